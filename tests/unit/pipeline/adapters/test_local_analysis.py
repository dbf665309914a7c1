"""The offline analyzer end to end with the real bundled MiniLM: the Analyzer port, the sample
call, tenant context, semantic questions, and the per-call time (printed, not asserted)."""

from __future__ import annotations

import time

from pipeline.adapters.local_analysis import LocalAnalyzer
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
