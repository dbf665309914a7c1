"""The rule engine: every rule type and mode, windows, negation, groups, ordering, evidence."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from pipeline.rules.engine import RuleResult, evaluate_rule, rule_roles
from pipeline.rules.facts import CallFacts
from schemas.analysis import Finding, Insights, SemanticAnswer
from schemas.common import Role
from schemas.rules import Rule
from tests.support.calls import A, C, facts, finding, insights, transcript, utt

RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def judge(rule: dict[str, Any], call: CallFacts) -> RuleResult:
    return evaluate_rule(RULE.validate_python(rule), call)


def phrase(*phrases: str, **options: Any) -> dict[str, Any]:
    return {"type": "phrase", "phrases": list(phrases), "role": "agent", **options}


def cited(result: RuleResult) -> list[str]:
    return [e.utterance_id for e in result.evidence]


GREETING = facts(
    transcript(
        utt("a1", A, 1_000, 4_000, "Hi there. Thank you for calling Acme! How can I help?"),
        utt("c1", C, 4_500, 9_000, "Thank you, I need help with my bill."),
        utt("a2", A, 90_000, 95_000, "Anything else? Goodbye."),
        duration_ms=100_000,
    )
)


# ---- phrase: exact, any-of, regex ------------------------------------------------------------


def test_exact_phrase_hit_carries_rationale_and_evidence() -> None:
    result = judge(phrase("thank you for calling"), GREETING)

    assert (result.holds, result.value, result.at) == (True, 1.0, (1_000, 10))
    assert result.rationale == "Agent said 'thank you for calling' at 0:01."
    assert [(e.utterance_id, e.quote, e.start_ms, e.end_ms) for e in result.evidence] == [
        ("a1", "Thank you for calling Acme!", 1_000, 4_000)
    ]


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("THANK you,  for calling!", True),
        ("thank-you for\ncalling", True),
        ("thank your caller", False),
        ("thankyou for calling", False),
        ("we thank you for callings", False),
    ],
)
def test_exact_is_word_bounded_and_case_insensitive(text: str, holds: bool) -> None:
    call = facts(transcript(utt("a1", A, 0, 1_000, text)))

    assert judge(phrase("thank you for calling"), call).holds is holds


def test_any_of_phrases_reports_the_earliest_in_the_utterance_and_counts_utterances() -> None:
    result = judge(phrase("goodbye", "anything else", "hi"), GREETING)

    assert result.rationale == "Agent said 'hi' at 0:01."
    assert (cited(result), result.value) == (["a1", "a2"], 2.0)


@pytest.mark.parametrize(
    ("role", "expected"), [("agent", ["a1"]), ("customer", ["c1"]), ("any", ["a1", "c1"])]
)
def test_phrase_by_role(role: str, expected: list[str]) -> None:
    assert cited(judge(phrase("thank you", role=role), GREETING)) == expected


def test_regex_phrase() -> None:
    call = facts(transcript(utt("a1", A, 0, 3_000, "We will garnish your wages today, sir.")))
    rule = phrase(r"\bgarnish\w*\b.{0,40}\btoday\b", match="regex")

    result = judge(rule, call)

    assert result.holds is True
    assert result.evidence[0].quote == "We will garnish your wages today, sir."
    assert judge(phrase(r"\bgarnish\w*\b.{0,10}\btoday\b", match="regex"), call).holds is False


# ---- phrase: fuzzy ---------------------------------------------------------------------------

MIRANDA = "this is an attempt to collect a debt and any information obtained will be used for that purpose"


@pytest.mark.parametrize(
    "heard",
    [
        "This is an attempt to collect a dept and any information obtain will be used for that purpose.",
        "this is a attempt to collect the debt and any informations obtained will be use for that purpose",
        "Uh, so, this is an attempt to collect a debt, and any information obtained will be used for that purpose, okay?",
    ],
)
def test_fuzzy_tolerates_asr_errors(heard: str) -> None:
    call = facts(transcript(utt("a1", A, 0, 9_000, heard)))

    result = judge(phrase(MIRANDA, match="fuzzy"), call)

    assert result.holds is True, result.rationale
    assert re.fullmatch(r"Agent said '.+ purpose'( \(\d+% match\))? at 0:00\.", result.rationale), (
        result.rationale
    )
    assert [e.utterance_id for e in result.evidence] == ["a1"]


@pytest.mark.parametrize(
    "heard",
    [
        "This call is recorded for quality and training purposes.",
        "this is an attempt to reach you about your account, please call us back",
    ],
)
def test_fuzzy_rejects_other_sentences(heard: str) -> None:
    call = facts(transcript(utt("a1", A, 0, 9_000, heard)))

    assert judge(phrase(MIRANDA, match="fuzzy"), call).holds is False


def test_fuzzy_threshold_is_configurable() -> None:
    call = facts(transcript(utt("a1", A, 0, 3_000, "we can colect the dett today")))

    assert judge(phrase("collect the debt", match="fuzzy"), call).holds is True  # 90 % similar
    assert judge(phrase("collect the debt", match="fuzzy", threshold=0.95), call).holds is False


# ---- windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"anchor": "first", "seconds": 30}, ["a1"]),
        ({"anchor": "last", "seconds": 10}, ["a2"]),  # 90 s … 100 s; a2 starts at 90 s: edge in
        ({"anchor": "last", "seconds": 9.9}, ["a2"]),  # a2 runs to 95 s
        ({"anchor": "last", "seconds": 4.9}, []),
        ({"anchor": "first", "percent": 10}, ["a1"]),
        ({"anchor": "last", "percent": 10}, ["a2"]),
        ({"anchor": "last", "percent": 4}, []),
    ],
)
def test_windows_absolute_and_relative(window: dict[str, Any], expected: list[str]) -> None:
    result = judge(phrase("hi", "goodbye", window=window), GREETING)

    assert cited(result) == expected


def test_not_said_rationale_names_the_window() -> None:
    result = judge(
        phrase("a b", "c d", "e f", "g h", window={"anchor": "last", "percent": 5}), GREETING
    )

    assert (
        result.rationale
        == "Agent did not say 'a b', 'c d', 'e f' or 1 similar phrases in the last 5% of the call."
    )


def test_window_needs_exactly_one_size() -> None:
    with pytest.raises(ValidationError, match="exactly one of seconds or percent"):
        RULE.validate_python(phrase("hi", window={"anchor": "first", "seconds": 3, "percent": 5}))


# ---- negate and groups -----------------------------------------------------------------------


def test_negate_flips_and_keeps_the_evidence() -> None:
    said = judge(phrase("goodbye", negate=True), GREETING)
    not_said = judge(phrase("idiot", negate=True), GREETING)

    assert (said.holds, cited(said), said.rationale) == (
        False,
        ["a2"],
        "Agent said 'goodbye' at 1:30.",
    )
    assert (not_said.holds, not_said.evidence) == (True, [])


def test_negate_leaves_na_alone() -> None:
    assert (
        judge({"type": "semantic", "id": "q", "question": "Q?", "negate": True}, GREETING).holds
        is None
    )


def test_nested_groups() -> None:
    rule = {
        "type": "all_of",
        "rules": [
            phrase("thank you for calling"),
            {"type": "any_of", "rules": [phrase("never said"), phrase("goodbye")]},
            {"type": "any_of", "negate": True, "rules": [phrase("idiot"), phrase("stupid")]},
        ],
    }

    result = judge(rule, GREETING)

    assert (result.holds, result.value, cited(result)) == (True, 3.0, ["a1", "a2"])
    rule["rules"][1]["rules"].pop()  # type: ignore[index]
    failed = judge(rule, GREETING)
    assert failed.holds is False
    assert failed.rationale == "Agent did not say 'never said'."


def test_groups_ignore_na_children_and_all_na_is_na() -> None:
    na = {"type": "semantic", "id": "q", "question": "Q?"}

    assert judge({"type": "all_of", "rules": [na, phrase("goodbye")]}, GREETING).holds is True
    assert judge({"type": "any_of", "rules": [na, phrase("nope")]}, GREETING).holds is False
    assert judge({"type": "any_of", "rules": [na, na]}, GREETING).holds is None


# ---- when and order --------------------------------------------------------------------------


def test_when_is_na_unless_the_condition_holds() -> None:
    rule = {
        "type": "when",
        "condition": phrase("my bill", role="customer"),
        "then": phrase("goodbye"),
    }
    skipped = {**rule, "condition": phrase("refund", role="customer")}

    result = judge(rule, GREETING)

    assert (result.holds, cited(result)) == (True, ["c1", "a2"])
    assert judge(skipped, GREETING).holds is None


@pytest.mark.parametrize(
    ("texts", "holds"),
    [
        (["Can you confirm your date of birth?", "Your balance is 40 dollars."], True),
        (["Your balance is 40 dollars.", "Can you confirm your date of birth?"], False),
        (["Hello.", "Your balance is 40 dollars."], False),
        (["Confirm your date of birth first, then your balance is 40.", "Okay."], True),
        (["Your balance is 40, but first confirm your date of birth.", "Okay."], False),
        (["Can you confirm your date of birth?", "Thanks."], None),
    ],
)
def test_order_first_must_precede_the_first_then(texts: list[str], holds: bool | None) -> None:
    call = facts(transcript(utt("a1", A, 0, 5_000, texts[0]), utt("a2", A, 6_000, 9_000, texts[1])))
    rule = {"type": "order", "first": phrase("date of birth"), "then": phrase("your balance")}

    assert judge(rule, call).holds is holds


# ---- sentiment, interruption, non-talk, metric ----------------------------------------------

MOOD = facts(
    transcript(
        utt("c1", C, 0, 10_000, "This is terrible, the worst service."),
        utt("a1", A, 10_500, 15_000, "I understand, let me fix it."),
        utt("c2", C, 15_500, 20_000, "Okay."),
        utt("c3", C, 30_000, 40_000, "Great, thanks, I appreciate it."),
    )
)


def test_sentiment_mean_in_a_window_and_change() -> None:
    early = {
        "type": "sentiment",
        "role": "customer",
        "window": {"anchor": "first", "percent": 25},
        "max": -0.3,
    }
    change = {"type": "sentiment", "role": "customer", "measure": "change", "min": 0.5}

    low = judge(early, MOOD)
    rose = judge(change, MOOD)

    assert (low.holds, low.value, cited(low)) == (True, -0.8, ["c1"])
    assert (
        low.rationale
        == "Customer's mean sentiment in the first 25% of the call was -0.8 (allowed: at most -0.3)."
    )
    assert (rose.holds, rose.value) == (True, pytest.approx(1.3))
    assert judge({**change, "min": 1.5}, MOOD).holds is False


def test_sentiment_of_a_silent_role_is_na() -> None:
    call = facts(transcript(utt("a1", A, 0, 1_000, "hello")))

    assert judge({"type": "sentiment", "role": "customer", "max": 0}, call).holds is None


def test_interruptions_above_a_threshold_cite_the_interrupting_turns() -> None:
    call = facts(
        transcript(
            utt("c1", C, 0, 10_000, "Let me explain what happened with my order"),
            utt("a1", A, 2_000, 4_000, "Yes yes I know"),
            utt("a2", A, 6_000, 7_000, "Sure"),
            utt("a3", A, 9_800, 12_000, "Right, so"),  # 200 ms overlap: a handover, not counted
        )
    )
    rule = {"type": "interruption", "role": "agent", "above": 1}

    result = judge(rule, call)

    assert (result.holds, result.value, cited(result)) == (True, 2.0, ["a1", "a2"])
    assert judge({**rule, "above": 2}, call).holds is False
    assert judge({**rule, "role": "customer"}, call).holds is False


SILENT = facts(
    transcript(
        utt("a1", A, 0, 5_000, "hello"),
        utt("c1", C, 12_000, 15_000, "hi"),  # 7 s gap
        utt("a2", A, 19_000, 20_000, "so"),  # 4 s gap
        duration_ms=20_000,
    )
)


@pytest.mark.parametrize(
    ("min_gap_ms", "count", "holds"), [(4_000, 2, True), (5_000, 2, False), (7_000, 1, True)]
)
def test_non_talk_long_silences(min_gap_ms: int, count: int, holds: bool) -> None:
    result = judge({"type": "non_talk", "min_gap_ms": min_gap_ms, "count": count}, SILENT)

    assert result.holds is holds
    assert result.evidence[0].start_ms == 5_000 and result.evidence[0].end_ms == 12_000


def test_non_talk_share() -> None:
    result = judge({"type": "non_talk", "share": 0.5}, SILENT)  # 11 s of 20 s

    assert (result.holds, result.value) == (True, 0.55)
    assert judge({"type": "non_talk", "share": 0.6}, SILENT).holds is False
    assert cited(result) == ["c1", "a2"]  # the two silences, in time order


@pytest.mark.parametrize(
    ("bounds", "holds"),
    [({"min": 0.3, "max": 0.7}, True), ({"max": 0.6}, False), ({"min": 0.7}, False)],
)
def test_metric_rule(bounds: dict[str, float], holds: bool) -> None:
    result = judge(
        {"type": "metric", "path": "by_role.agent.talk_ratio", **bounds}, SILENT
    )  # 6 of 9 s

    assert (result.holds, result.value) == (holds, 0.6667)


def test_metric_list_counts_and_unmeasured_is_na() -> None:
    listed = judge({"type": "metric", "path": "non_talk.instances", "max": 1}, SILENT)
    unmeasured = judge({"type": "metric", "path": "by_role.unknown.words", "max": 1}, SILENT)

    assert (listed.holds, listed.value, cited(listed)) == (False, 2.0, ["c1", "a2"])
    assert unmeasured.holds is None


# ---- semantic and finding --------------------------------------------------------------------


def test_semantic_reads_the_analyzer_answer_by_id() -> None:
    call = facts(GREETING.transcript, insights=insights(resolved="yes", polite="no", unsure="na"))

    yes = judge({"type": "semantic", "id": "resolved", "question": "Was it resolved?"}, call)
    no = judge({"type": "semantic", "id": "polite", "question": "Was the agent polite?"}, call)

    assert (yes.holds, yes.rationale, cited(yes)) == (
        True,
        "The agent's behaviour answers 'yes'.",
        ["a1"],
    )
    assert no.holds is False
    assert judge({"type": "semantic", "id": "unsure", "question": "?"}, call).holds is None
    missing = judge({"type": "semantic", "id": "other", "question": "Other?"}, call)
    assert (missing.holds, missing.rationale) == (
        None,
        "N/A: 'Other?': no answer from the analyzer.",
    )


def test_semantic_without_insights_is_na() -> None:
    empty = facts(
        GREETING.transcript,
        insights=Insights(provider="x", semantic=[SemanticAnswer(id="b", answer="yes")]),
    )

    assert judge({"type": "semantic", "id": "a", "question": "A?"}, empty).holds is None
    assert judge({"type": "semantic", "id": "a", "question": "A?"}, GREETING).holds is None


def test_finding_rule_cites_the_finding() -> None:
    c1 = GREETING.transcript.utterances[1]
    call = facts(GREETING.transcript, findings=[finding("calling_hours", c1)])

    hit = judge({"type": "finding", "codes": ["reg_f_7_in_7", "calling_hours"]}, call)
    miss = judge({"type": "finding", "codes": ["card_number"]}, call)

    assert (hit.holds, hit.rationale, cited(hit)) == (
        True,
        "calling_hours: calling_hours detected.",
        ["c1"],
    )
    assert (miss.holds, miss.rationale) == (False, "No finding of card_number.")


def test_rule_roles_collects_the_tree() -> None:
    rule = RULE.validate_python(
        {
            "type": "when",
            "condition": phrase("x", role="customer"),
            "then": {"type": "all_of", "rules": [phrase("y"), {"type": "finding", "codes": ["z"]}]},
        }
    )

    assert rule_roles(rule) == {Role.AGENT, Role.CUSTOMER}


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        RULE.validate_python({**phrase("hi"), "rol": "agent"})
    with pytest.raises(ValidationError):
        RULE.validate_python({"type": "phrasee", "phrases": ["hi"]})


def test_finding_with_no_evidence_still_holds() -> None:
    call = facts(
        GREETING.transcript,
        findings=[Finding(code="reg_f_7_in_7", description="8 calls in 7 days")],
    )

    result = judge({"type": "finding", "codes": ["reg_f_7_in_7"]}, call)

    assert (result.holds, result.evidence, result.at) == (True, [], None)
