"""Scorecard evaluation: evaluators, windows, weights, N/A, auto-fail, bands, the default card."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import InvalidInput
from pipeline.rules import RULES_VERSION
from pipeline.rules.metrics import compute_metrics
from pipeline.rules.scorecard import (
    NO_AGENT_RATIONALE,
    band_for,
    clock,
    evaluate,
    load_default_scorecard,
    quote_around,
)
from schemas.analysis import CallMetrics, NonTalk, RoleMetrics
from schemas.common import Role
from schemas.scorecard import (
    Criterion,
    ItemScore,
    ScoreArtifact,
    Scorecard,
    ScorecardItem,
    ScorecardSection,
)
from schemas.transcript import Transcript, Utterance

A, C, U = Role.AGENT, Role.CUSTOMER, Role.UNKNOWN
BANDS = {"excellent": 0.9, "good": 0.75, "fair": 0.5, "poor": 0.0}


def utt(uid: str, role: Role, start: int, end: int, text: str = "okay") -> Utterance:
    return Utterance(
        id=uid,
        speaker=role.value,
        role=role,
        role_confidence=1.0,
        start_ms=start,
        end_ms=end,
        text=text,
    )


def call(*utterances: Utterance, duration_ms: int = 100_000) -> Transcript:
    return Transcript(
        duration_ms=duration_ms, channels=2, utterances=list(utterances), diarization="channel"
    )


def item(uid: str, criterion: dict[str, Any], **options: Any) -> ScorecardItem:
    return ScorecardItem(
        id=uid, label=uid.replace("_", " "), criterion=Criterion(**criterion), **options
    )


def phrase(*phrases: str, **options: Any) -> dict[str, Any]:
    return {"type": "phrase", "phrases": list(phrases), "role": "agent", **options}


def metric(path: str, **bounds: float) -> dict[str, Any]:
    return {"type": "metric", "metric": path, **bounds}


def card(*items: ScorecardItem, bands: dict[str, float] | None = None) -> Scorecard:
    section = ScorecardSection(id="main", label="Main", items=list(items))
    return Scorecard(id="t", version=3, name="Test", sections=[section], bands=bands or BANDS)


def score(scorecard: Scorecard, transcript: Transcript) -> ScoreArtifact:
    return evaluate(scorecard, transcript, compute_metrics(transcript))


def only_item(artifact: ScoreArtifact) -> ItemScore:
    (section,) = artifact.sections
    (result,) = section.items
    return result


# ---- phrase evaluator ----------------------------------------------------------------------


def test_phrase_said_is_yes_with_rationale_and_evidence() -> None:
    transcript = call(
        utt("a1", A, 1_000, 4_000, "Hi there. Thank you for calling Acme! How can I help?")
    )

    result = only_item(
        score(card(item("greet", phrase("thank you for calling"), weight=2)), transcript)
    )

    assert (result.answer, result.points, result.potential) == ("yes", 2.0, 2.0)
    assert result.rationale == "Agent said 'thank you for calling' at 0:01."
    assert [(e.utterance_id, e.quote, e.start_ms, e.end_ms) for e in result.evidence] == [
        ("a1", "Thank you for calling Acme!", 1_000, 4_000)
    ]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("THANK you,  for calling!", "yes"),
        ("thank-you for\ncalling", "yes"),
        ("thank you for calling", "yes"),
        ("thank your caller", "no"),
        ("thankyou for calling", "no"),
        ("we thank you for callings", "no"),
    ],
)
def test_phrase_matching_is_word_bounded_and_tolerant(text: str, answer: str) -> None:
    transcript = call(utt("a1", A, 0, 3_000, text))

    assert (
        only_item(score(card(item("g", phrase("thank you for calling"))), transcript)).answer
        == answer
    )


def test_short_phrase_does_not_match_inside_words() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "This is Sam, which account?"))

    assert only_item(score(card(item("g", phrase("hi"))), transcript)).answer == "no"


def test_role_filter_ignores_the_other_party() -> None:
    transcript = call(
        utt("a1", A, 0, 3_000), utt("c1", C, 3_000, 6_000, "Hello, thank you for calling")
    )
    criterion = phrase("thank you for calling", window="first", within_ms=30_000)

    result = only_item(score(card(item("g", criterion)), transcript))

    assert (result.answer, result.points, result.potential) == ("no", 0.0, 1.0)
    assert result.rationale == "Agent did not say 'thank you for calling' in the first 30 s."
    assert result.evidence == []


def test_role_any_accepts_anyone_and_names_the_speaker() -> None:
    transcript = call(utt("a1", A, 0, 3_000), utt("c1", C, 4_000, 6_000, "I will sue you"))

    result = only_item(score(card(item("legal", phrase("sue", role="any"))), transcript))

    assert result.answer == "yes"
    assert result.rationale == "Customer said 'sue' at 0:04."


@pytest.mark.parametrize(("start", "answer"), [(30_000, "yes"), (30_001, "no")])
def test_first_window_edge_is_inclusive(start: int, answer: str) -> None:
    transcript = call(utt("a0", A, 0, 1_000), utt("a1", A, start, start + 2_000, "hello"))
    criterion = phrase("hello", window="first", within_ms=30_000)

    assert only_item(score(card(item("g", criterion)), transcript)).answer == answer


@pytest.mark.parametrize(("end", "answer"), [(55_000, "yes"), (54_999, "no")])
def test_last_window_edge_is_inclusive(end: int, answer: str) -> None:
    transcript = call(utt("a1", A, end - 3_000, end, "goodbye"), utt("c1", C, 90_000, 100_000))
    criterion = phrase("goodbye", window="last", within_ms=45_000)

    assert only_item(score(card(item("close", criterion)), transcript)).answer == answer


def test_negate_not_said_is_yes_without_evidence() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "Let me fix that for you."))
    criterion = phrase("stupid", "shut up", negate=True)

    result = only_item(score(card(item("polite", criterion)), transcript))

    assert (result.answer, result.points, result.evidence) == ("yes", 1.0, [])
    assert result.rationale == "Agent did not say 'stupid', 'shut up'."


def test_negate_said_is_no_citing_the_offending_utterance() -> None:
    transcript = call(
        utt("a1", A, 0, 3_000, "Let me check."),
        utt("c1", C, 3_000, 9_000, "This is stupid."),  # the customer may say it
        utt("a2", A, 133_000, 135_000, "Oh, shut   UP. I said wait."),
        duration_ms=140_000,
    )
    criterion = phrase("stupid", "shut up", negate=True)

    result = only_item(score(card(item("polite", criterion)), transcript))

    assert (result.answer, result.points, result.potential) == ("no", 0.0, 1.0)
    assert result.rationale == "Agent said 'shut up' at 2:13."
    assert [(e.utterance_id, e.quote) for e in result.evidence] == [("a2", "Oh, shut   UP.")]


def test_evidence_is_capped_at_three_in_time_order() -> None:
    transcript = call(
        *(utt(f"a{i}", A, i * 5_000, i * 5_000 + 1_000, "sorry") for i in (4, 0, 3, 1, 2))
    )

    result = only_item(score(card(item("apology", phrase("sorry"))), transcript))

    assert [e.utterance_id for e in result.evidence] == ["a0", "a1", "a2"]


def test_not_said_rationale_lists_three_phrases_then_counts() -> None:
    criterion = phrase("a b", "c d", "e f", "g h", "i j", window="last", within_ms=1_500)

    result = only_item(score(card(item("x", criterion)), call(utt("a1", A, 0, 1_000))))

    assert (
        result.rationale
        == "Agent did not say 'a b', 'c d', 'e f' or 2 similar phrases in the last 1.5 s."
    )


def test_quote_is_the_sentence_cut_around_the_match() -> None:
    text = "Well. " + "blah " * 60 + "thank you for calling " + "blah " * 60 + "end. Next one."
    start = text.index("thank you")

    quote = quote_around(text, start, start + len("thank you for calling"))

    assert "thank you for calling" in quote
    assert quote.startswith("…")
    assert quote.endswith("…")
    assert len(quote) <= 162
    assert quote_around("Short one. Hello there! Bye.", 11, 16) == "Hello there!"


def test_clock() -> None:
    assert [clock(ms) for ms in (0, 1_999, 61_000, 3_725_000)] == [
        "0:00",
        "0:01",
        "1:01",
        "1:02:05",
    ]


# ---- metric evaluator ----------------------------------------------------------------------


def balanced_call() -> Transcript:
    # agent 40 s, customer 60 s of talk; one 5 s gap before c2.
    return call(
        utt("a1", A, 0, 20_000),
        utt("c1", C, 20_000, 50_000),
        utt("a2", A, 50_000, 70_000),
        utt("c2", C, 75_000, 105_000),
        duration_ms=105_000,
    )


@pytest.mark.parametrize(
    ("bounds", "answer", "allowed"),
    [
        ({"min": 0.3, "max": 0.7}, "yes", "0.3 to 0.7"),
        ({"min": 0.5, "max": 0.7}, "no", "0.5 to 0.7"),
        ({"max": 0.4}, "yes", "at most 0.4"),  # the edge is inside
        ({"min": 0.41}, "no", "at least 0.41"),
    ],
)
def test_metric_within_bounds(bounds: dict[str, float], answer: str, allowed: str) -> None:
    scorecard = card(item("ratio", metric("by_role.agent.talk_ratio", **bounds)))

    result = only_item(score(scorecard, balanced_call()))

    assert result.answer == answer
    assert result.rationale == f"by_role.agent.talk_ratio was 0.4 (allowed: {allowed})."


def test_list_metric_compares_its_length_and_cites_instances() -> None:
    scorecard = card(item("silence", metric("non_talk.instances", max=0)))

    result = only_item(score(scorecard, balanced_call()))

    assert result.answer == "no"
    assert result.rationale == "non_talk.instances was 1 (allowed: at most 0)."
    assert [(e.utterance_id, e.start_ms, e.end_ms) for e in result.evidence] == [
        ("c2", 70_000, 75_000)
    ]


def test_longest_monologue_metric_cites_the_monologue() -> None:
    scorecard = card(item("mono", metric("longest_monologue_ms", max=20_000)))

    result = only_item(score(scorecard, balanced_call()))

    assert result.answer == "no"  # c1 runs 30 s
    assert [e.utterance_id for e in result.evidence] == ["c1"]


def test_metric_of_a_role_that_never_spoke_is_na() -> None:
    transcript = call(utt("a1", A, 0, 5_000), utt("a2", A, 6_000, 9_000))
    scorecard = card(
        item("cust", metric("by_role.customer.talk_ratio", min=0.1)),
        item("unk", metric("by_role.unknown.words", max=5)),
    )

    items = score(scorecard, transcript).sections[0].items

    assert [(i.answer, i.potential) for i in items] == [("na", 0.0), ("na", 0.0)]
    assert items[0].rationale == "N/A: by_role.customer.talk_ratio was not measured on this call."


def test_metric_value_none_is_na() -> None:
    transcript = call(utt("a1", A, 0, 5_000))
    metrics = CallMetrics(
        duration_ms=5_000,
        by_role={A: RoleMetrics(utterances=1, words=3, words_per_minute=None)},
        non_talk=NonTalk(),
    )
    scorecard = card(item("pace", metric("by_role.agent.words_per_minute", max=180)))

    assert only_item(evaluate(scorecard, transcript, metrics)).answer == "na"


# ---- scoring --------------------------------------------------------------------------------


def test_weights_and_sections_add_up() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "hello"))
    scorecard = Scorecard(
        id="t",
        version=3,
        name="Test",
        bands=BANDS,
        sections=[
            ScorecardSection(id="s1", label="One", items=[item("hi", phrase("hello"), weight=2)]),
            ScorecardSection(
                id="s2", label="Two", items=[item("bye", phrase("goodbye"), weight=1)]
            ),
        ],
    )

    artifact = score(scorecard, transcript)

    assert [(s.id, s.score, s.potential, s.normalized) for s in artifact.sections] == [
        ("s1", 2.0, 2.0, 1.0),
        ("s2", 0.0, 1.0, 0.0),
    ]
    assert (artifact.score, artifact.potential) == (2.0, 3.0)
    assert artifact.normalized == pytest.approx(0.6667)
    assert artifact.band == "fair"
    assert (artifact.scorecard_id, artifact.scorecard_version) == ("t", 3)
    assert artifact.details["rules_version"] == RULES_VERSION


def test_na_leaves_the_denominator() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "hello"))
    scorecard = card(
        item("hi", phrase("hello")), item("cust", metric("by_role.customer.talk_ratio", min=0.2))
    )

    artifact = score(scorecard, transcript)

    assert (artifact.score, artifact.potential, artifact.normalized) == (1.0, 1.0, 1.0)
    assert artifact.band == "excellent"


def test_no_agent_makes_flagged_items_na_and_says_why() -> None:
    transcript = call(utt("u1", U, 0, 3_000, "hello, thank you"), utt("u2", U, 10_000, 12_000))
    scorecard = card(
        item("hi", phrase("hello")),
        item("silence", metric("non_talk.instances", max=0), na_when_no_agent=False),
        item("any", phrase("thank you", role="any"), na_when_no_agent=False),
    )

    items = score(scorecard, transcript).sections[0].items

    assert [(i.id, i.answer, i.potential) for i in items] == [
        ("hi", "na", 0.0),
        ("silence", "no", 1.0),  # silence is measurable without roles
        ("any", "yes", 1.0),
    ]
    assert items[0].rationale == NO_AGENT_RATIONALE
    assert "no agent speech" in NO_AGENT_RATIONALE


def test_all_na_gives_no_normalized_score_and_no_band() -> None:
    artifact = score(card(item("hi", phrase("hello"))), call(utt("c1", C, 0, 1_000, "hello")))

    assert (artifact.potential, artifact.normalized, artifact.band) == (0.0, None, None)
    assert artifact.sections[0].normalized is None
    assert artifact.compliance_score is None


def test_auto_fail_forces_zero_and_fail_band() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "hello, you idiot"))
    scorecard = card(
        item("hi", phrase("hello"), weight=5),
        item("polite", phrase("idiot", negate=True), auto_fail=True, compliance=True),
    )

    artifact = score(scorecard, transcript)

    assert artifact.auto_failed is True
    assert (artifact.normalized, artifact.band) == (0.0, "fail")
    assert (artifact.score, artifact.potential) == (5.0, 6.0)  # kept as earned, for review
    assert artifact.details["auto_failed_items"] == ["polite"]
    assert artifact.compliance_score == 0.0


def test_auto_fail_item_passing_changes_nothing() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "hello"))
    scorecard = card(
        item("hi", phrase("hello")), item("polite", phrase("idiot", negate=True), auto_fail=True)
    )

    artifact = score(scorecard, transcript)

    assert (artifact.auto_failed, artifact.normalized, artifact.band) == (False, 1.0, "excellent")


def test_compliance_score_counts_compliance_items_only() -> None:
    transcript = call(utt("a1", A, 0, 3_000, "This call is recorded. Hello."))
    scorecard = card(
        item("greet", phrase("goodbye"), weight=4),
        item("disclosure", phrase("call is recorded"), compliance=True, weight=2),
        item("verify", phrase("date of birth"), compliance=True, weight=1),
    )

    artifact = score(scorecard, transcript)

    assert artifact.compliance_score == pytest.approx(0.6667)
    assert artifact.normalized == pytest.approx(2 / 7, abs=1e-4)


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


def test_no_band_fits_below_every_minimum() -> None:
    assert band_for({"pass": 0.5}, 0.2) is None
    assert band_for({}, 0.9) is None


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        (metric("by_role.agent.talk_ration", max=1), "unknown metric"),
        (metric("by_role.boss.talk_ratio", max=1), "unknown role"),
        (metric("longest_monologue_role", max=1), "not a number"),
        (metric("by_role.agent.talk_ratio"), "min, max or both"),
        ({"type": "metric", "max": 1}, "metric path"),
        ({"type": "phrase", "phrases": []}, "needs phrases"),
        ({"type": "phrase", "phrases": ["?!"]}, "needs phrases"),
        ({"type": "phrase", "phrases": ["hi"], "window": "first"}, "within_ms"),
    ],
)
def test_unusable_card_fails_with_a_stable_code(criterion: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        score(card(item("bad", criterion)), call(utt("a1", A, 0, 1_000)))

    assert raised.value.code == "invalid_scorecard"


# ---- the default card -----------------------------------------------------------------------


def test_default_card_loads() -> None:
    default = load_default_scorecard()

    assert (default.id, default.version, default.name) == (
        "default",
        1,
        "Customer service basics (default)",
    )
    assert default.bands == {"excellent": 0.9, "good": 0.75, "fair": 0.5, "poor": 0.0}
    assert [s.id for s in default.sections] == ["opening", "conduct", "closing"]
    items = {i.id: i for s in default.sections for i in s.items}
    assert items["no_rude_language"].compliance is True
    assert items["no_rude_language"].criterion.negate is True
    assert items["no_long_silences"].criterion.metric == "non_talk.instances"
    assert items["balanced_talk"].criterion.min == 0.3


def good_call() -> Transcript:
    return call(
        utt(
            "a1",
            A,
            0,
            8_000,
            "Good morning, thank you for calling Acme. My name is Sam, how can I help you today?",
        ),
        utt("c1", C, 8_500, 20_000, "Hi Sam, I was charged twice for my subscription this month."),
        utt(
            "a2",
            A,
            20_500,
            35_000,
            "I'm sorry about that. Let me pull up your account. I can see the duplicate charge.",
        ),
        utt("c2", C, 35_500, 45_000, "Yes, that's the one. Can you refund it?"),
        utt(
            "a3",
            A,
            45_500,
            60_000,
            "Done, I have refunded the second charge. It will show in three to five days.",
        ),
        utt("c3", C, 60_500, 70_000, "Great, that's all sorted then, I appreciate it."),
        utt("a4", A, 70_500, 80_000, "Is there anything else I can help you with today?"),
        utt("c4", C, 80_500, 85_000, "No, that's everything, thanks."),
        utt("a5", A, 85_500, 90_000, "Thank you for calling Acme, have a great day. Goodbye."),
        duration_ms=91_000,
    )


def bad_call() -> Transcript:
    return call(
        utt("a1", A, 0, 3_000, "Yeah, what do you want?"),
        utt(
            "c1",
            C,
            3_500,
            40_000,
            "I was charged twice and I have been on hold forever, this is ridiculous.",
        ),
        utt("a2", A, 46_000, 50_000, "Calm down. That's not my problem, billing did that."),
        utt(
            "c2",
            C,
            50_500,
            88_000,
            "I want to speak to a supervisor right now, this is unacceptable.",
        ),
        duration_ms=90_000,
    )


def test_default_card_scores_a_good_call_high() -> None:
    artifact = score(load_default_scorecard(), good_call())

    answers = {i.id: i.answer for s in artifact.sections for i in s.items}
    assert set(answers.values()) == {"yes"}, answers
    assert (artifact.normalized, artifact.band, artifact.compliance_score) == (
        1.0,
        "excellent",
        1.0,
    )
    assert artifact.sections[0].items[0].rationale == "Agent said 'good morning' at 0:00."


def test_default_card_scores_a_bad_call_low() -> None:
    artifact = score(load_default_scorecard(), bad_call())

    answers = {i.id: i.answer for s in artifact.sections for i in s.items}
    assert answers == dict.fromkeys(
        [
            "greeting",
            "introduction",
            "no_long_silences",
            "balanced_talk",
            "no_rude_language",
            "offer_further_help",
            "closing_courtesy",
        ],
        "no",
    )
    assert (artifact.score, artifact.normalized, artifact.band) == (0.0, 0.0, "poor")
    assert artifact.compliance_score == 0.0
    rude = artifact.sections[1].items[2]
    assert [e.utterance_id for e in rude.evidence] == ["a2"]
    assert rude.rationale == "Agent said 'calm down' at 0:46."
