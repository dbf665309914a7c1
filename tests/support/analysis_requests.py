"""Build real AnalysisRequests for analyzer tests: a role-attributed transcript, its metrics and
sentiment computed by the pipeline's own rules, and a tenant's client context."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.ports import AnalysisRequest
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.sentiment import sentiment_report
from schemas.analysis import SemanticQuestion
from schemas.common import Role
from schemas.tenant import ClientContext, IntentDef
from schemas.transcript import Transcript, Utterance

CONTEXT = ClientContext(
    business_description="Acme Energy sells electricity and gas to homes in Ohio.",
    company_names=["Acme Energy"],
    policies=["Agents must read the recording disclosure in the first minute."],
    compliance_rules=["Never ask for a full card number out loud."],
    risk_triggers=["cancel my contract", "lawyer"],
    glossary={"PTP": "promise to pay"},
    intents=[
        IntentDef(name="billing_dispute", description="The customer disputes a charge"),
        IntentDef(name="move_service", description="Moving service to a new address"),
    ],
)
QUESTIONS = [
    SemanticQuestion(id="greeting", question="Did the agent greet the customer?", role="agent"),
    SemanticQuestion(id="disclosure", question="Was the recording disclosure read?"),
]
CALL = [
    (Role.AGENT, "Thank you for calling Acme Energy, this call is recorded."),
    (Role.CUSTOMER, "Hi, my bill doubled this month and I want to cancel my contract."),
    (Role.AGENT, "I am sorry to hear that, let me look at your account."),
    (Role.CUSTOMER, "Please hurry, I am talking to a lawyer about this."),
]


class FlatScorer:
    """A real SentimentScorer: neutral for everything (sentiment is not what these tests check)."""

    name = "flat"

    def score(self, text: str) -> float:
        return 0.0


def utterance(n: int, role: Role, text: str, *, start_ms: int | None = None) -> Utterance:
    start = n * 4000 if start_ms is None else start_ms
    return Utterance(
        id=f"u{n + 1:04d}",
        speaker="A" if role == Role.AGENT else "B",
        role=role,
        role_confidence=1.0,
        start_ms=start,
        end_ms=start + 3500,
        text=text,
    )


def transcript(lines: Sequence[tuple[Role, str]] = CALL) -> Transcript:
    utterances = [utterance(n, role, text) for n, (role, text) in enumerate(lines)]
    return Transcript(
        language="en",
        duration_ms=len(lines) * 4000,
        channels=1,
        utterances=utterances,
        diarization="labels",
    )


def request(
    lines: Sequence[tuple[Role, str]] = CALL,
    *,
    context: ClientContext = CONTEXT,
    questions: Sequence[SemanticQuestion] = QUESTIONS,
) -> AnalysisRequest:
    call = transcript(lines)
    return AnalysisRequest(
        transcript=call,
        metrics=compute_metrics(call),
        sentiment=sentiment_report(call, FlatScorer()),
        context=context,
        questions=list(questions),
        call_type="support",
    )
