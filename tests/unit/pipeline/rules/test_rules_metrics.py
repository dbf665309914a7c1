"""Call metrics on hand-built transcripts with known times: every expected number is worked out."""

from __future__ import annotations

import pytest

from pipeline.rules.metrics import compute_metrics, word_count
from schemas.common import Role
from schemas.transcript import Transcript, Utterance

A, C, U = Role.AGENT, Role.CUSTOMER, Role.UNKNOWN


def utt(uid: str, role: Role, start: int, end: int, text: str = "word") -> Utterance:
    return Utterance(
        id=uid,
        speaker=role.value,
        role=role,
        role_confidence=1.0,
        start_ms=start,
        end_ms=end,
        text=text,
    )


def call(*utterances: Utterance, duration_ms: int = 60_000) -> Transcript:
    return Transcript(
        duration_ms=duration_ms, channels=2, utterances=list(utterances), diarization="channel"
    )


def words(n: int) -> str:
    return " ".join(["word"] * n)


def two_party_call() -> Transcript:
    # agent 0-10 s, customer 12-20 s, agent 20-30 s, customer 35-40 s, then 20 s of silence.
    return call(
        utt("a1", A, 0, 10_000, words(30)),
        utt("c1", C, 12_000, 20_000, words(16)),
        utt("a2", A, 20_000, 30_000, words(20)),
        utt("c2", C, 35_000, 40_000, words(10)),
    )


def test_talk_time_ratio_and_words_per_role() -> None:
    metrics = compute_metrics(two_party_call())

    agent, customer = metrics.by_role[A], metrics.by_role[C]
    assert (agent.talk_ms, customer.talk_ms) == (20_000, 13_000)
    assert agent.talk_ratio == pytest.approx(20 / 33, abs=1e-4)
    assert customer.talk_ratio == pytest.approx(13 / 33, abs=1e-4)
    assert (agent.utterances, agent.words, customer.words) == (2, 50, 26)
    assert agent.words_per_minute == pytest.approx(150.0)  # 50 words in 20 s
    assert customer.words_per_minute == pytest.approx(120.0)  # 26 words in 13 s
    assert Role.UNKNOWN not in metrics.by_role


def test_overlapping_utterances_of_one_role_are_not_double_counted() -> None:
    metrics = compute_metrics(call(utt("a1", A, 0, 10_000), utt("a2", A, 5_000, 12_000)))

    assert metrics.by_role[A].talk_ms == 12_000
    assert metrics.by_role[A].talk_ratio == 1.0


def test_agent_and_customer_always_reported_unknown_only_when_heard() -> None:
    only_agent = compute_metrics(call(utt("a1", A, 0, 1_000)))
    with_unknown = compute_metrics(call(utt("a1", A, 0, 1_000), utt("u1", U, 2_000, 3_000)))

    assert list(only_agent.by_role) == [A, C]
    assert only_agent.by_role[C].talk_ms == 0
    assert only_agent.by_role[C].words_per_minute is None
    assert list(with_unknown.by_role) == [A, C, U]
    assert with_unknown.by_role[U].talk_ratio == 0.5


def test_non_talk_includes_leading_and_trailing_silence() -> None:
    transcript = call(utt("a1", A, 5_000, 20_000), utt("c1", C, 22_000, 30_000))

    non_talk = compute_metrics(transcript).non_talk

    assert non_talk.total_ms == 60_000 - 15_000 - 8_000  # 5 s lead, 2 s gap, 30 s tail
    assert non_talk.ratio == pytest.approx(37 / 60, abs=1e-4)
    assert non_talk.instances == []  # lead and tail are not gaps between speech
    assert non_talk.threshold_ms == 3_000


def test_gap_instances_cite_the_following_utterance_and_respect_the_threshold() -> None:
    transcript = two_party_call()

    default = compute_metrics(transcript).non_talk
    lower = compute_metrics(transcript, gap_threshold_ms=2_000).non_talk

    assert [(e.utterance_id, e.start_ms, e.end_ms, e.quote) for e in default.instances] == [
        ("c2", 30_000, 35_000, "")
    ]
    assert [(e.utterance_id, e.start_ms, e.end_ms) for e in lower.instances] == [
        ("c1", 10_000, 12_000),  # exactly at the threshold counts
        ("c2", 30_000, 35_000),
    ]
    assert default.total_ms == 27_000


def test_interruption_counts_when_the_other_keeps_talking() -> None:
    transcript = call(utt("a1", A, 0, 10_000), utt("c1", C, 4_000, 6_000))

    metrics = compute_metrics(transcript)

    assert (metrics.by_role[C].interruptions, metrics.by_role[A].interruptions) == (1, 0)


def test_backchannel_near_the_end_of_a_turn_is_not_an_interruption() -> None:
    transcript = call(utt("a1", A, 0, 10_000), utt("c1", C, 9_700, 10_200, "mm-hm"))

    with_rule = compute_metrics(transcript)
    without_rule = compute_metrics(transcript, min_interrupt_overlap_ms=0)

    assert with_rule.by_role[C].interruptions == 0  # agent goes on only 300 ms
    assert without_rule.by_role[C].interruptions == 1


def test_interruption_threshold_edge_and_simultaneous_start() -> None:
    at_edge = call(utt("a1", A, 0, 10_000), utt("c1", C, 9_500, 11_000))
    together = call(utt("a1", A, 0, 10_000), utt("c1", C, 0, 4_000))

    assert compute_metrics(at_edge).by_role[C].interruptions == 1  # exactly 500 ms
    assert compute_metrics(together).by_role[C].interruptions == 0
    assert compute_metrics(together).by_role[A].interruptions == 0


def test_each_utterance_interrupts_at_most_once_and_roles_are_counted_apart() -> None:
    transcript = call(
        utt("a1", A, 0, 10_000),
        utt("u1", U, 1_000, 9_000),
        utt("c1", C, 2_000, 3_000),  # over both agent and unknown: still one interruption
        utt("a2", A, 12_000, 20_000),
        utt("c2", C, 15_000, 16_000),
    )

    metrics = compute_metrics(transcript)

    assert metrics.by_role[C].interruptions == 2
    assert metrics.by_role[U].interruptions == 1
    assert metrics.by_role[A].interruptions == 0


def test_monologue_merges_short_pauses_of_the_same_role() -> None:
    transcript = call(utt("a1", A, 0, 10_000), utt("a2", A, 11_000, 20_000))

    metrics = compute_metrics(transcript)

    assert metrics.by_role[A].longest_monologue_ms == 20_000
    assert metrics.longest_monologue_ms == 20_000
    assert metrics.longest_monologue_role == A


def test_monologue_breaks_at_a_long_pause() -> None:
    transcript = call(utt("a1", A, 0, 10_000), utt("a2", A, 11_500, 20_000))

    assert compute_metrics(transcript).by_role[A].longest_monologue_ms == 10_000


def test_monologue_breaks_when_another_role_speaks_in_the_pause() -> None:
    transcript = call(
        utt("a1", A, 0, 10_000), utt("c1", C, 10_200, 10_800, "ok"), utt("a2", A, 11_000, 20_000)
    )

    metrics = compute_metrics(transcript)

    assert metrics.by_role[A].longest_monologue_ms == 10_000
    assert metrics.by_role[C].longest_monologue_ms == 600


def test_backchannel_inside_a_turn_does_not_break_the_monologue() -> None:
    transcript = call(
        utt("a1", A, 0, 10_000), utt("c1", C, 5_000, 5_500, "mm-hm"), utt("a2", A, 11_000, 20_000)
    )

    assert compute_metrics(transcript).by_role[A].longest_monologue_ms == 20_000


def test_overall_longest_monologue_evidence_quotes_its_first_utterance() -> None:
    long_text = "I have been a customer for twelve years " * 5
    transcript = call(
        utt("a1", A, 0, 5_000),
        utt("c1", C, 6_000, 20_000, long_text),
        utt("c2", C, 21_000, 30_000),
        utt("a2", A, 31_000, 40_000),
    )

    metrics = compute_metrics(transcript)

    evidence = metrics.longest_monologue
    assert evidence is not None
    assert (evidence.utterance_id, evidence.start_ms, evidence.end_ms) == ("c1", 6_000, 30_000)
    assert len(evidence.quote) == 120
    assert evidence.quote.endswith("…")
    assert long_text.startswith(evidence.quote[:-1])
    assert (metrics.longest_monologue_role, metrics.longest_monologue_ms) == (C, 24_000)


def test_duration_falls_back_to_last_end_and_order_does_not_matter() -> None:
    transcript = call(utt("c1", C, 5_000, 9_000), utt("a1", A, 0, 4_000), duration_ms=0)

    metrics = compute_metrics(transcript)

    assert metrics.duration_ms == 9_000
    assert metrics.non_talk.total_ms == 1_000
    assert [
        e.utterance_id
        for e in compute_metrics(transcript, gap_threshold_ms=1_000).non_talk.instances
    ] == ["c1"]


def test_empty_transcript() -> None:
    metrics = compute_metrics(call(duration_ms=0))

    assert metrics.duration_ms == 0
    assert metrics.non_talk.total_ms == 0
    assert metrics.non_talk.ratio == 0.0
    assert metrics.longest_monologue is None
    assert metrics.longest_monologue_ms == 0
    assert metrics.by_role[A].talk_ratio == 0.0


def test_word_count_ignores_punctuation_tokens() -> None:
    assert word_count("Hello , - world! it's 5 o'clock …") == 5
