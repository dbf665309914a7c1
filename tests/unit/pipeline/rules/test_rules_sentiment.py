"""Sentiment aggregation: exact arithmetic with a table scorer, and a real VADER trend."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from pipeline.adapters.vader import VaderScorer
from pipeline.rules.sentiment import label, quarter, sentiment_report
from schemas.common import Role
from schemas.transcript import Transcript, Utterance

A, C, U = Role.AGENT, Role.CUSTOMER, Role.UNKNOWN


class TableScorer:
    """A real `SentimentScorer`: known scores per text, so every aggregate can be worked by hand."""

    name = "table"

    def __init__(self, table: Mapping[str, float]) -> None:
        self._table = table

    def score(self, text: str) -> float:
        return self._table[text]


def utt(uid: str, role: Role, start: int, end: int, text: str) -> Utterance:
    return Utterance(
        id=uid,
        speaker=role.value,
        role=role,
        role_confidence=1.0,
        start_ms=start,
        end_ms=end,
        text=text,
    )


def call(*utterances: Utterance, duration_ms: int = 40_000) -> Transcript:
    return Transcript(
        duration_ms=duration_ms, channels=2, utterances=list(utterances), diarization="channel"
    )


SCORES = {"a1": 0.5, "c1": -0.8, "c2": -0.4, "a2": 0.6, "c3": 0.7}


def quartered_call() -> Transcript:
    # 40 s call, quarters of 10 s. Midpoints: a1 2 s, c1 7 s (Q1); c2 15 s (Q2); Q3 empty;
    # a2 32 s and c3 36 s (Q4).
    return call(
        utt("a1", A, 0, 4_000, "a1"),
        utt("c1", C, 4_000, 10_000, "c1"),
        utt("c2", C, 12_000, 18_000, "c2"),
        utt("a2", A, 31_000, 33_000, "a2"),
        utt("c3", C, 33_000, 39_000, "c3"),
    )


def test_per_utterance_scores_and_labels_in_time_order() -> None:
    report = sentiment_report(quartered_call(), TableScorer(SCORES))

    assert report.provider == "table"
    assert [(s.utterance_id, s.role, s.score, s.label) for s in report.utterances] == [
        ("a1", A, 0.5, "positive"),
        ("c1", C, -0.8, "negative"),
        ("c2", C, -0.4, "negative"),
        ("a2", A, 0.6, "positive"),
        ("c3", C, 0.7, "positive"),
    ]


def test_by_role_is_weighted_by_talk_time() -> None:
    report = sentiment_report(quartered_call(), TableScorer(SCORES))

    # agent: (0.5·4 s + 0.6·2 s) / 6 s; customer: (-0.8·6 - 0.4·6 + 0.7·6) / 18
    assert report.by_role[A] == pytest.approx(3.2 / 6, abs=1e-4)
    assert report.by_role[C] == pytest.approx(-3.0 / 18, abs=1e-4)
    assert U not in report.by_role


def test_quarters_means_and_empty_quarter() -> None:
    report = sentiment_report(quartered_call(), TableScorer(SCORES))

    assert report.by_quarter == pytest.approx([-0.15, -0.4, None, 0.65])
    assert report.by_role_quarter[A] == pytest.approx([0.5, None, None, 0.6])
    assert report.by_role_quarter[C] == pytest.approx([-0.8, -0.4, None, 0.7])


def test_start_to_end_uses_first_and_last_non_empty_quarters() -> None:
    report = sentiment_report(quartered_call(), TableScorer(SCORES))

    assert report.start_to_end[A] == pytest.approx(0.1)
    assert report.start_to_end[C] == pytest.approx(1.5)


def test_start_to_end_is_zero_with_one_quarter_of_speech() -> None:
    transcript = call(utt("a1", A, 0, 2_000, "a1"), utt("c1", C, 2_000, 4_000, "c1"))

    report = sentiment_report(transcript, TableScorer(SCORES))

    assert report.start_to_end == {A: 0.0, C: 0.0}
    assert report.by_quarter == pytest.approx([-0.15, None, None, None])


def test_quarter_boundaries_are_half_open_and_overrun_lands_last() -> None:
    def at(start: int, end: int) -> int:
        return quarter(utt("x", A, start, end, "x"), 40_000)

    assert at(9_000, 10_998) == 0  # midpoint 9_999
    assert at(9_000, 11_000) == 1  # midpoint 10_000
    assert at(39_000, 45_000) == 3  # past the stated duration
    assert quarter(utt("x", A, 0, 10, "x"), 0) == 0


def test_duration_zero_uses_the_last_end() -> None:
    transcript = call(utt("a1", A, 0, 2_000, "a1"), utt("c3", C, 6_000, 8_000, "c3"), duration_ms=0)

    report = sentiment_report(transcript, TableScorer(SCORES))

    assert report.by_quarter == pytest.approx([0.5, None, None, 0.7])


def test_label_thresholds() -> None:
    assert [label(s) for s in (0.05, 0.0499, 0.0, -0.0499, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "neutral",
        "negative",
    ]


def test_empty_transcript_reports_nothing() -> None:
    report = sentiment_report(call(), TableScorer({}))

    assert report.utterances == []
    assert report.by_role == {}
    assert report.by_quarter == [None, None, None, None]


def test_real_vader_sees_a_frustrated_customer_calm_down() -> None:
    transcript = call(
        utt("a1", A, 0, 4_000, "Thank you for calling, how can I help?"),
        utt("c1", C, 4_000, 9_000, "Yeah, okay, this is really frustrating. I was charged twice."),
        utt("a2", A, 12_000, 20_000, "I'm sorry about that, let me look into it for you."),
        utt("c2", C, 31_000, 36_000, "Perfect, that's all sorted. I really appreciate it."),
    )

    report = sentiment_report(transcript, VaderScorer())

    assert report.provider == "vader+callcenter"
    assert report.utterances[1].label == "negative"
    assert report.utterances[3].label == "positive"
    assert report.start_to_end[C] > 1.0
    first_quarter = report.by_role_quarter[C][0]
    assert first_quarter is not None
    assert first_quarter < -0.5
