"""The offline analyzer end to end with the real bundled MiniLM: the Analyzer port, the sample
call, tenant context, semantic questions, and the per-call time (printed, not asserted)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pipeline.adapters.local_analysis import LocalAnalyzer, Vectors
from pipeline.ports import Analyzer
from schemas.analysis import Insights, SemanticQuestion
from schemas.common import Role
from schemas.tenant import ClientContext, IntentDef
from tests.support.analysis_calls import (
    analysis_request,
    sample_transcript,
    shared_analyzer,
    transcript_from_lines,
)
from tests.support.analysis_labels import REALISTIC_CALL, SEMANTIC_QUESTIONS


def _evidence_ids(insights: Insights) -> list[str]:
    findings = insights.risk_factors + insights.violations
    return [e.utterance_id for f in findings for e in f.evidence] + [
        e.utterance_id for a in insights.semantic for e in a.evidence
    ]


def test_it_is_an_analyzer_that_loads_nothing_until_used() -> None:
    port: Analyzer = LocalAnalyzer()
    assert (port.name, port.model) == ("local", "all-MiniLM-L6-v2+rules/1")
    assert LocalAnalyzer()._encoder is None


def test_sample_call() -> None:
    transcript = sample_transcript()
    questions = [
        SemanticQuestion(
            id="further", question="Did the agent offer further assistance?", role=Role.AGENT
        ),
        SemanticQuestion(
            id="cancel", question="Did the customer ask to cancel?", role=Role.CUSTOMER
        ),
        SemanticQuestion(id="x", question="Did anyone speak?", role=Role.UNKNOWN),
    ]
    insights = shared_analyzer().analyze(analysis_request(transcript, questions=questions))
    assert (insights.provider, insights.model) == ("local", "all-MiniLM-L6-v2+rules/1")
    assert [i.name for i in insights.intents][:1] == ["billing_question"]
    assert all(0.0 <= i.confidence <= 1.0 for i in insights.intents)
    assert insights.topics[0] == "billing question"
    assert "charged twice" in insights.summary and len(insights.summary) <= 600
    assert insights.outcome == "resolved"
    assert insights.action_items == [] and insights.violations == [] and insights.risk_factors == []
    answers = {a.id: a for a in insights.semantic}
    assert [answers[q].answer for q in ("further", "cancel", "x")] == ["yes", "no", "na"]
    assert answers["further"].evidence[0].quote == "Is there anything else I can help you with?"
    ids = {u.id for u in transcript.utterances}
    assert _evidence_ids(insights) and set(_evidence_ids(insights)) <= ids


def test_realistic_call_with_tenant_context() -> None:
    transcript = transcript_from_lines(
        [*REALISTIC_CALL, (Role.CUSTOMER, "If this happens again I'll call my lawyer.")]
    )
    context = ClientContext(
        intents=[
            IntentDef(
                name="outage",
                examples=["My internet keeps going down", "The connection drops every night"],
            ),
            IntentDef(
                name="move", examples=["I'm moving house and need service at my new address"]
            ),
        ],
        risk_triggers=["work from home"],
    )
    insights = shared_analyzer().analyze(
        analysis_request(transcript, context=context, questions=[q for q, _ in SEMANTIC_QUESTIONS])
    )
    assert [i.name for i in insights.intents] == ["outage"]
    assert insights.topics == ["outage"]
    assert insights.action_items == [
        "Agent: I'll book a technician to visit tomorrow between eight and noon.",
        "Agent: You'll receive a text message confirming the appointment within the hour.",
    ]
    assert {f.code for f in insights.risk_factors} == {"legal_threat", "risk_trigger"}
    assert len(insights.semantic) == len(SEMANTIC_QUESTIONS)
    assert set(_evidence_ids(insights)) <= {u.id for u in transcript.utterances}


def test_an_empty_transcript_gets_empty_insights() -> None:
    transcript = sample_transcript().model_copy(update={"utterances": []})
    insights = shared_analyzer().analyze(
        analysis_request(transcript, questions=[SemanticQuestion(id="q", question="Did it?")])
    )
    assert (insights.summary, insights.intents, insights.outcome) == ("", [], None)
    assert [a.answer for a in insights.semantic] == ["na"]


def test_time_per_utterance_is_reported() -> None:
    analyzer = shared_analyzer()
    transcript = transcript_from_lines(REALISTIC_CALL * 3)  # a 48-turn call
    request = analysis_request(transcript, questions=[q for q, _ in SEMANTIC_QUESTIONS])
    analyzer.analyze(request)  # warm: exemplar vectors and torch's first-call setup
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        analyzer.analyze(request)
        runs.append(time.perf_counter() - started)
    per_utterance = sorted(runs)[1] * 1000 / len(transcript.utterances)
    print(
        f"\nlocal analysis: {sorted(runs)[1] * 1000:.0f} ms per {len(transcript.utterances)}-turn"
        f" call with {len(SEMANTIC_QUESTIONS)} questions = {per_utterance:.1f} ms/utterance"
    )
    assert per_utterance > 0


class _CountingAnalyzer(LocalAnalyzer):
    """The real analyzer, counting how many texts each embedding call holds (its memory)."""

    def __init__(self, *, window_utterances: int, window_overlap: int) -> None:
        super().__init__(window_utterances=window_utterances, window_overlap=window_overlap)
        self.batches: list[int] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(len(texts))
        return super().embed(texts)


FILLER = ("Okay.", "Mhm.", "Right.", "Sure.", "Got it.", "Yes.")
WINDOW, OVERLAP = 200, 10


def _long_call(count: int) -> list[tuple[Role, str]]:
    """`count` lines of filler with findings in the first window, in the overlap of the first two
    windows (index 195) and in the last window."""
    lines = [
        (Role.AGENT if i % 2 else Role.CUSTOMER, FILLER[i % len(FILLER)]) for i in range(count)
    ]
    lines[2] = (Role.CUSTOMER, "I was charged twice and I will call my lawyer about it.")
    lines[5] = (Role.AGENT, "I'll send you the refund form by email.")
    lines[195] = (Role.AGENT, "I will update your address today.")
    lines[-4] = (Role.CUSTOMER, "I want to speak to a supervisor right now.")
    lines[-3] = (Role.AGENT, "We will call you back on Friday.")
    return lines


def test_a_long_call_is_read_in_bounded_windows_and_merged() -> None:
    transcript = transcript_from_lines(_long_call(3_000))
    analyzer = _CountingAnalyzer(window_utterances=WINDOW, window_overlap=OVERLAP)
    questions = [SemanticQuestion(id="hello", question="Did the agent greet?", role=Role.AGENT)]
    insights = analyzer.analyze(analysis_request(transcript, questions=questions))
    windows = -(-(3_000 - OVERLAP) // (WINDOW - OVERLAP))
    # Memory: no embedding call holds more than one window's units (filler: one unit a line;
    # the intent exemplars are embedded once, apart).
    call_batches = [n for n in analyzer.batches if n > 0]
    assert len(call_batches) >= windows
    assert max(call_batches) <= WINDOW + 10
    assert insights.action_items == [
        "Agent: I'll send you the refund form by email.",
        "Agent: I will update your address today.",  # in two windows, listed once
        "Agent: We will call you back on Friday.",
    ]
    ids = {u.text: u.id for u in transcript.utterances}
    risks = {f.code: [e.utterance_id for e in f.evidence] for f in insights.risk_factors}
    assert risks == {
        "legal_threat": [ids["I was charged twice and I will call my lawyer about it."]],
        "escalation_request": [ids["I want to speak to a supervisor right now."]],
    }
    assert insights.outcome == "callback_scheduled"
    assert [e.utterance_id for e in insights.outcome_evidence] == [
        ids["We will call you back on Friday."]
    ]
    assert [a.id for a in insights.semantic] == ["hello"]
    assert 0 < len(insights.summary) <= 600


def test_windows_find_what_one_read_of_the_whole_call_finds() -> None:
    transcript = transcript_from_lines(_long_call(240))
    request = analysis_request(transcript, questions=[q for q, _ in SEMANTIC_QUESTIONS[:6]])
    whole = shared_analyzer().analyze(request)
    parts = LocalAnalyzer(window_utterances=60, window_overlap=5).analyze(request)
    assert parts.model_dump(exclude={"summary"}) == whole.model_dump(exclude={"summary"})
    assert parts.summary
