"""Scorecards v2: weights and points, N/A, scale/choice levels, auto-fail (section vs card),
compliance score, bands, confidence gating, validation errors and semantic questions."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import InvalidInput
from pipeline.rules import RULES_VERSION
from pipeline.rules.facts import CallFacts
from pipeline.rules.scorecard import (
    band_for,
    evaluate,
    no_speech_rationale,
    parse_scorecard,
    semantic_questions,
)
from schemas.analysis import SemanticQuestion
from schemas.common import Role
from schemas.scorecard import ItemScore, ScoreArtifact
from tests.support.calls import A, C, U, facts, transcript, utt

BANDS = {"excellent": 0.9, "good": 0.75, "fair": 0.5, "poor": 0.0}


def phrase(*phrases: str, **options: Any) -> dict[str, Any]:
    return {"type": "phrase", "phrases": list(phrases), "role": "agent", **options}


def item(uid: str, evaluator: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"id": uid, "label": uid.replace("_", " "), "evaluator": evaluator, **options}


def card(*sections: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {
        "id": "t",
        "version": 3,
        "name": "Test",
        "bands": BANDS,
        "sections": [
            {"id": f"s{n}", "label": f"Section {n}", "items": items}
            for n, items in enumerate(sections, 1)
        ],
        **options,
    }


def score(data: dict[str, Any], call: CallFacts) -> ScoreArtifact:
    return evaluate(parse_scorecard(data), call)


def items(artifact: ScoreArtifact) -> dict[str, ItemScore]:
    return {i.id: i for s in artifact.sections for i in s.items}


HELLO = facts(
    transcript(
        utt("a1", A, 0, 3_000, "Hello, this call is recorded."),
        utt("c1", C, 3_500, 6_000, "Hi, my card was declined."),
        utt("a2", A, 6_500, 9_000, "You idiot, read the number again."),
    )
)


# ---- points ---------------------------------------------------------------------------------


def test_weights_points_and_sections_add_up() -> None:
    artifact = score(
        card(
            [item("hi", phrase("hello"), weight=2), item("bye", phrase("goodbye"))],
            [item("rec", phrase("recorded"), points={"yes": 10, "no": 2})],
        ),
        HELLO,
    )

    assert [(i.id, i.answer, i.points, i.potential) for i in items(artifact).values()] == [
        ("hi", "yes", 2.0, 2.0),
        ("bye", "no", 0.0, 1.0),
        ("rec", "yes", 10.0, 10.0),
    ]
    assert [(s.score, s.potential, s.normalized) for s in artifact.sections] == [
        (2.0, 3.0, 0.6667),
        (10.0, 10.0, 1.0),
    ]
    assert (artifact.score, artifact.potential, artifact.normalized) == (12.0, 13.0, 0.9231)
    assert artifact.band == "excellent"
    assert (artifact.scorecard_id, artifact.scorecard_version) == ("t", 3)
    assert artifact.rules_version == RULES_VERSION


def test_na_leaves_the_denominator_unless_not_allowed() -> None:
    na = {"type": "semantic", "id": "q", "question": "Resolved?"}
    allowed = score(card([item("hi", phrase("hello")), item("q", na)]), HELLO)
    forced = score(card([item("hi", phrase("hello")), item("q", na, na_allowed=False)]), HELLO)

    assert (items(allowed)["q"].answer, allowed.potential, allowed.normalized) == ("na", 1.0, 1.0)
    assert (items(forced)["q"].answer, forced.potential, forced.normalized) == ("no", 2.0, 0.5)
    assert items(forced)["q"].rationale.startswith("Counted as 'no' (N/A is not allowed): N/A:")


def test_item_about_a_role_that_never_spoke_is_na() -> None:
    mono = facts(
        transcript(utt("u1", U, 0, 3_000, "hello, thank you"), utt("u2", U, 9_000, 12_000))
    )
    artifact = score(
        card(
            [
                item("hi", phrase("hello")),
                item("silence", {"type": "non_talk", "min_gap_ms": 3_000}),
                item("any", phrase("thank you", role="any")),
            ]
        ),
        mono,
    )

    result = items(artifact)
    assert [(i.answer, i.potential) for i in result.values()] == [
        ("na", 0.0),
        ("yes", 1.0),  # silence is measurable without roles
        ("yes", 1.0),
    ]
    assert result["hi"].rationale == no_speech_rationale(Role.AGENT)


def test_all_na_gives_no_normalized_score_and_no_band() -> None:
    artifact = score(card([item("hi", phrase("hello"))]), facts(transcript(utt("c1", C, 0, 1_000))))

    assert (artifact.potential, artifact.normalized, artifact.band) == (0.0, None, None)
    assert artifact.compliance_score is None


SCALE = {
    "answer_type": "scale",
    "points": {"1": 0, "3": 2, "5": 4},
    "levels": [{"answer": "5", "min": 0.4, "max": 0.6}, {"answer": "3", "min": 0.3, "max": 0.7}],
}


@pytest.mark.parametrize(
    ("agent_ms", "answer", "points"), [(5_000, "5", 4.0), (6_500, "3", 2.0), (9_000, "1", 0.0)]
)
def test_scale_answer_from_the_first_level_holding_the_value(
    agent_ms: int, answer: str, points: float
) -> None:
    call = facts(transcript(utt("a1", A, 0, agent_ms), utt("c1", C, 10_000, 20_000 - agent_ms)))
    metric = {"type": "metric", "path": "by_role.agent.talk_ratio", "min": 0, "max": 1}

    result = items(score(card([item("talk", metric, weight=2, **SCALE)]), call))["talk"]

    assert (result.answer, result.points, result.potential) == (answer, points * 2, 8.0)
    assert result.failed is (answer == "1")


def test_choice_answer_from_a_phrase_count() -> None:
    rule = phrase("sorry", "i understand")
    choice = {
        "answer_type": "choice",
        "points": {"warm": 3, "some": 1, "cold": 0},
        "levels": [{"answer": "warm", "min": 2}, {"answer": "some", "min": 1}],
    }
    warm = facts(
        transcript(utt("a1", A, 0, 1_000, "Sorry!"), utt("a2", A, 2_000, 3_000, "I understand."))
    )

    assert items(score(card([item("e", rule, **choice)]), warm))["e"].answer == "warm"
    assert items(score(card([item("e", rule, **choice)]), HELLO))["e"].answer == "cold"


# ---- auto-fail and compliance ----------------------------------------------------------------

POLITE = phrase("idiot", negate=True)


def test_auto_fail_card_zeroes_the_card_and_bands_it_fail() -> None:
    data = card(
        [item("hi", phrase("hello"), weight=5)],
        [item("polite", POLITE, auto_fail="card", compliance=True, severity="critical")],
    )

    artifact = score(data, HELLO)

    assert (artifact.auto_failed, artifact.auto_failed_items) == (True, ["polite"])
    assert (artifact.score, artifact.potential, artifact.normalized, artifact.band) == (
        0.0,
        6.0,
        0.0,
        "fail",
    )
    assert artifact.sections[0].score == 5.0  # sections keep what they earned, for review
    assert [e.utterance_id for e in items(artifact)["polite"].evidence] == ["a2"]


def test_auto_fail_section_zeroes_only_its_section() -> None:
    data = card(
        [item("hi", phrase("hello"), weight=5)],
        [item("polite", POLITE, auto_fail="section"), item("rec", phrase("recorded"), weight=3)],
    )

    artifact = score(data, HELLO)

    assert [(s.auto_failed, s.score, s.potential, s.normalized) for s in artifact.sections] == [
        (False, 5.0, 5.0, 1.0),
        (True, 0.0, 4.0, 0.0),
    ]
    assert (artifact.auto_failed, artifact.score, artifact.normalized) == (False, 5.0, 0.5556)
    assert artifact.band == "fair"


def test_auto_fail_item_passing_changes_nothing() -> None:
    data = card(
        [
            item("hi", phrase("hello")),
            item("polite", phrase("moron", negate=True), auto_fail="card"),
        ]
    )

    artifact = score(data, HELLO)

    assert (artifact.auto_failed, artifact.normalized, artifact.band) == (False, 1.0, "excellent")


def test_compliance_score_is_separate_and_never_averaged_away() -> None:
    data = card(
        [item(f"soft{n}", phrase("hello"), weight=10) for n in range(3)],
        [
            item("disclosure", phrase("call is recorded"), compliance=True, weight=2),
            item("polite", POLITE, compliance=True, weight=2),
        ],
    )

    artifact = score(data, HELLO)

    assert artifact.normalized == pytest.approx(32 / 34, abs=1e-4)
    assert artifact.band == "excellent"
    assert artifact.compliance_score == 0.5


@pytest.mark.parametrize(
    ("normalized", "band"),
    [
        (1.0, "excellent"),
        (0.9, "excellent"),
        (0.8999, "good"),
        (0.5, "fair"),
        (0.0, "poor"),
        (None, None),
    ],
)
def test_band_is_the_highest_minimum_reached(normalized: float | None, band: str | None) -> None:
    assert band_for(BANDS, normalized) == band
    assert band_for({"pass": 0.5}, 0.2) is None


# ---- confidence gating -----------------------------------------------------------------------


def gated_call(role_confidence: float, *, asr: float | None = None) -> CallFacts:
    return facts(
        transcript(
            utt("a1", A, 0, 3_000, "Hello.", role_confidence=role_confidence),
            utt(
                "a2", A, 4_000, 6_000, "You idiot.", role_confidence=role_confidence, confidence=asr
            ),
            utt("c1", C, 7_000, 9_000, "Excuse me?", role_confidence=role_confidence),
        )
    )


def test_a_confident_auto_fail_fails_the_call() -> None:
    artifact = score(
        card([item("hi", phrase("hello")), item("polite", POLITE, auto_fail="card")]),
        gated_call(1.0),
    )

    assert (artifact.auto_failed, artifact.band, artifact.needs_review) == (True, "fail", False)
    assert items(artifact)["polite"].needs_review is False


def test_an_uncertain_auto_fail_needs_review_instead() -> None:
    artifact = score(
        card([item("hi", phrase("hello")), item("polite", POLITE, auto_fail="card")]),
        gated_call(0.55),
    )

    polite = items(artifact)["polite"]
    assert (polite.answer, polite.failed, polite.needs_review) == ("no", True, True)
    assert (artifact.auto_failed, artifact.band, artifact.normalized) == (False, "fair", 0.5)
    assert artifact.needs_review is True
    assert artifact.review_reasons == [
        "polite: a2 is attributed to the agent with confidence 0.55 (< 0.7)."
    ]


def test_low_asr_confidence_and_an_uncertain_role_without_evidence_need_review() -> None:
    asr = score(card([item("polite", POLITE, auto_fail="card")]), gated_call(1.0, asr=0.3))
    absent = score(card([item("bye", phrase("goodbye"), auto_fail="section")]), gated_call(0.6))
    policy = card([item("polite", POLITE, auto_fail="card")], review={"role_confidence_min": 0.5})

    assert asr.review_reasons == ["polite: a2 was transcribed with confidence 0.3 (< 0.5)."]
    assert absent.review_reasons == [
        "bye: the agent's speech is attributed with mean confidence 0.6 (< 0.7)."
    ]
    assert absent.sections[0].auto_failed is False
    assert score(policy, gated_call(0.55)).auto_failed is True  # the tenant's threshold


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (
            card([item("x", phrase("a")), item("x", phrase("b"))]),
            "sections[0].items[1].id",
            "duplicate item id",
        ),
        (
            card([item("x", {"type": "metric", "path": "by_role.agent.talk_ration", "max": 1})]),
            "sections[0].items[0].evaluator",
            "unknown metric",
        ),
        (
            card([item("x", {"type": "metric", "path": "by_role.boss.words", "max": 1})]),
            "evaluator",
            "unknown role",
        ),
        (
            card([item("x", {"type": "metric", "path": "longest_monologue_role", "max": 1})]),
            "evaluator",
            "not a number",
        ),
        (
            card([item("x", {"type": "metric", "path": "duration_ms"})]),
            "evaluator",
            "min, max or both",
        ),
        (
            card(
                [
                    item(
                        "x",
                        {
                            "type": "any_of",
                            "rules": [phrase("a"), phrase("(unclosed", match="regex")],
                        },
                    )
                ]
            ),
            "evaluator.rules[1]",
            "does not compile",
        ),
        (card([item("x", phrase("a|", match="regex"))]), "evaluator", "matches the empty string"),
        (card([item("x", phrase("?!"))]), "evaluator", "at least one word"),
        (
            card([item("x", phrase("a"), points={"yes": -1, "no": 0})]),
            "items[0].points",
            "non-negative",
        ),
        (card([item("x", phrase("a"), points={"yes": 0, "no": 0})]), "points", "earn points"),
        (
            card([item("x", phrase("a"), points={"si": 1, "no": 0})]),
            "points",
            "exactly 'yes' and 'no'",
        ),
        (
            card([item("x", phrase("a"), answer_type="scale", points={"1": 0, "5": 1})]),
            "levels",
            "needs levels",
        ),
        (
            card(
                [
                    item(
                        "x",
                        phrase("a"),
                        answer_type="scale",
                        points={"low": 0, "5": 1},
                        levels=[{"answer": "5", "min": 1}],
                    )
                ]
            ),
            "points",
            "whole numbers",
        ),
        (
            card(
                [
                    item(
                        "x",
                        phrase("a"),
                        answer_type="choice",
                        points={"a": 0, "b": 1},
                        levels=[{"answer": "c"}],
                    )
                ]
            ),
            "levels[0].answer",
            "has no points",
        ),
        (
            card(
                [
                    item(
                        "x",
                        {
                            "type": "sentiment",
                            "measure": "change",
                            "window": {"anchor": "first", "seconds": 5},
                            "min": 0,
                        },
                    )
                ]
            ),
            "evaluator",
            "takes no window",
        ),
        (
            card(
                [
                    item("x", {"type": "semantic", "id": "q", "question": "A?"}),
                    item("y", {"type": "semantic", "id": "q", "question": "B?"}),
                ]
            ),
            "items[1].evaluator",
            "two different questions",
        ),
        ({**card([item("x", phrase("a"))]), "bands": {"top": 90}}, "bands.top", "between 0 and 1"),
    ],
)
def test_invalid_cards_name_the_path(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_scorecard(data)

    assert raised.value.code == "invalid_scorecard"
    assert path in raised.value.message


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({**card([item("x", phrase("a"))]), "colour": "red"}, "colour"),
        (card([item("x", phrase("a"), wieght=2)]), "sections.0.items.0.wieght"),
        (
            card([item("x", {**phrase("a"), "window": {"anchor": "middle", "seconds": 5}})]),
            "sections.0.items.0.evaluator.phrase.window.anchor",
        ),
        (card([item("x", phrase("a"), auto_fail="yes")]), "sections.0.items.0.auto_fail"),
    ],
)
def test_tenant_cards_are_strict(data: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_scorecard(data)

    assert raised.value.code == "invalid_scorecard"
    assert f"scorecard: {path}:" in raised.value.message


def test_a_bad_card_fails_evaluation_too() -> None:
    from schemas.scorecard import Scorecard

    bad = Scorecard.model_validate(card([item("x", {"type": "metric", "path": "nope", "max": 1})]))

    with pytest.raises(InvalidInput, match="unknown metric"):
        evaluate(bad, HELLO)


def test_semantic_questions_are_collected_once_per_id() -> None:
    ask = {
        "type": "semantic",
        "id": "resolved",
        "question": "Was the issue resolved?",
        "role": "agent",
    }
    data = card(
        [
            item("a", ask),
            item(
                "b",
                {
                    "type": "all_of",
                    "rules": [
                        phrase("hi"),
                        ask,
                        {"type": "semantic", "id": "calm", "question": "Calm?"},
                    ],
                },
            ),
        ]
    )

    assert semantic_questions(parse_scorecard(data)) == [
        SemanticQuestion(id="resolved", question="Was the issue resolved?", role=Role.AGENT),
        SemanticQuestion(id="calm", question="Calm?", role="any"),
    ]
