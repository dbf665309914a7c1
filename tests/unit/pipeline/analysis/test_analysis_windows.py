"""Windows over a long call and the merge of their findings (pure: no model)."""

from __future__ import annotations

from pipeline.analysis import outcomes
from pipeline.analysis.intents import IntentMatch
from pipeline.analysis.units import utterance_evidence
from pipeline.analysis.windows import (
    merge_actions,
    merge_answers,
    merge_findings,
    merge_intents,
    merge_outcomes,
    windows,
)
from schemas.analysis import SemanticAnswer
from schemas.common import Role
from tests.support.analysis_calls import transcript_from_lines


def test_windows_overlap_and_cover_every_item_once_beyond_the_overlap() -> None:
    items = list(range(45))
    slices = windows(items, size=20, overlap=5)
    assert [(s[0], s[-1]) for s in slices] == [(0, 19), (15, 34), (30, 44)]
    assert windows(items, size=0, overlap=5) == [items]  # 0: the whole call
    assert windows(items, size=45, overlap=5) == [items]
    assert windows(items, size=3, overlap=9)[1][0] == 1  # an overlap ≥ size still advances


def test_an_action_item_in_the_overlap_is_listed_once_and_a_repeated_promise_twice() -> None:
    promise = "I'll send you the form today."
    lines = [(Role.AGENT, promise), (Role.CUSTOMER, "Thanks."), (Role.AGENT, promise)]
    utterances = transcript_from_lines(lines).utterances
    first, second = utterances[:2], utterances[0:]  # both windows hold the first promise
    merged = merge_actions([outcomes.action_items(first), outcomes.action_items(second)])
    assert [(a.utterance.id, a.text) for a in merged] == [
        (utterances[0].id, promise),
        (utterances[2].id, promise),
    ]


def test_findings_merge_by_kind_in_risk_order_with_evidence_once_and_capped() -> None:
    lines = [
        (Role.CUSTOMER, "I want to cancel my account."),
        (Role.CUSTOMER, "I will call my lawyer."),
        (Role.CUSTOMER, "Cancel it, I said cancel it."),
        (Role.CUSTOMER, "I'll cancel tomorrow."),
        (Role.CUSTOMER, "Honestly I will cancel."),
    ]
    utterances = transcript_from_lines(lines).utterances
    early, late = utterances[:1], utterances[0:]
    merged = merge_findings(
        [outcomes.risk_factors(early), outcomes.risk_factors(late)], order=outcomes.risk_order()
    )
    assert merged == outcomes.risk_factors(utterances)  # as if read whole
    assert [f.code for f in merged] == ["legal_threat", "cancellation_threat"]
    assert len(merged[1].evidence) == outcomes.MAX_EVIDENCE


def test_outcomes_merge_to_the_whole_calls_outcome() -> None:
    lines = [
        (Role.AGENT, "That is now fixed."),
        (Role.CUSTOMER, "It is still not working."),
        (Role.AGENT, "I have reset it, it's working now."),
    ]
    utterances = transcript_from_lines(lines).utterances
    parts = [outcomes.outcome_matches(utterances[:2]), outcomes.outcome_matches(utterances[1:])]
    found = merge_outcomes(parts)
    assert len(found["unresolved"]) == 1  # said in the overlap: seen by both windows
    merged = outcomes.choose_outcome(found)
    assert merged == outcomes.outcome(utterances)
    assert merged is not None and merged.label == "resolved" and len(merged.evidence) == 2


def test_intents_keep_each_best_window_and_the_margin() -> None:
    [u] = transcript_from_lines([(Role.CUSTOMER, "My bill is wrong.")]).utterances
    ev = utterance_evidence(u)
    first = [(IntentMatch("billing", 0.5, 0.50, 0), ev), (IntentMatch("cancel", 0.2, 0.35, 0), ev)]
    last = [(IntentMatch("billing", 0.7, 0.60, 0), ev), (IntentMatch("refund", 0.6, 0.55, 0), ev)]
    merged = merge_intents([first, last])
    assert [(i.name, i.confidence) for i in merged] == [("billing", 0.7), ("refund", 0.6)]


def test_answers_prefer_yes_then_the_closest_no() -> None:
    def answer(value: str, confidence: float) -> SemanticAnswer:
        return SemanticAnswer(id="q", answer=value, confidence=confidence)  # type: ignore[arg-type]

    no_far, no_near, yes = answer("no", 0.9), answer("no", 0.6), answer("yes", 0.7)
    assert merge_answers([[no_far], [no_near]]) == [no_near]
    assert merge_answers([[no_far], [yes], [answer("yes", 0.8)]])[0].confidence == 0.8
    assert merge_answers([]) == []
