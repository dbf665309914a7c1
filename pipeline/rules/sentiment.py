"""Sentiment of a call: per utterance, per role, per quarter of the call, and its start→end change.

The scoring itself comes from a `SentimentScorer` port; this module only aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from pipeline.ports import SentimentScorer
from pipeline.rules.metrics import call_duration_ms, in_time_order
from schemas.analysis import SentimentReport, UtteranceSentiment
from schemas.common import Role
from schemas.transcript import Transcript, Utterance

# VADER's own cut-offs for its compound score; other scorers share the -1 … 1 scale.
POSITIVE_MIN = 0.05
NEGATIVE_MAX = -0.05
QUARTERS = 4
DIGITS = 4


def label(score: float) -> str:
    """positive (≥ 0.05), negative (≤ -0.05) or neutral."""
    if score >= POSITIVE_MIN:
        return "positive"
    if score <= NEGATIVE_MAX:
        return "negative"
    return "neutral"


def quarter(utterance: Utterance, duration_ms: int) -> int:
    """Index 0..3 of the quarter holding the utterance's midpoint; quarters are half-open
    [k·d/4, (k+1)·d/4), and speech running past the stated duration lands in the last one."""
    if duration_ms <= 0:
        return 0
    midpoint = (utterance.start_ms + utterance.end_ms) / 2
    return min(QUARTERS - 1, max(0, int(midpoint * QUARTERS // duration_ms)))


def _weighted_mean(scored: Sequence[tuple[Utterance, float]]) -> float:
    """Talk-time-weighted mean, so a long complaint outweighs a one-word 'okay'."""
    weights = [max(0, u.end_ms - u.start_ms) for u, _ in scored]
    if sum(weights) == 0:
        return fmean(score for _, score in scored)
    return sum(w * score for w, (_, score) in zip(weights, scored, strict=True)) / sum(weights)


def _by_quarter(scored: Sequence[tuple[Utterance, float]], duration_ms: int) -> list[float | None]:
    buckets: list[list[float]] = [[] for _ in range(QUARTERS)]
    for utterance, score in scored:
        buckets[quarter(utterance, duration_ms)].append(score)
    return [round(fmean(b), DIGITS) if b else None for b in buckets]


def _start_to_end(quarters: Sequence[float | None]) -> float:
    """Last non-empty quarter minus the first; 0.0 when fewer than two quarters have speech."""
    present = [q for q in quarters if q is not None]
    if len(present) < 2:
        return 0.0
    return round(present[-1] - present[0], DIGITS)


def sentiment_report(transcript: Transcript, scorer: SentimentScorer) -> SentimentReport:
    """Score every utterance once with `scorer` and aggregate.

    by_role and by_role_quarter hold only roles that spoke (a mean of nothing is not 0).
    Raises whatever the scorer raises (pipeline.errors types, per the port).
    """
    utterances = in_time_order(transcript.utterances)
    scored = [(u, scorer.score(u.text)) for u in utterances]
    duration = call_duration_ms(transcript)
    roles = [role for role in Role if any(u.role == role for u in utterances)]
    per_role = {role: [(u, s) for u, s in scored if u.role == role] for role in roles}
    by_role_quarter = {role: _by_quarter(per_role[role], duration) for role in roles}
    return SentimentReport(
        provider=scorer.name,
        utterances=[
            UtteranceSentiment(utterance_id=u.id, role=u.role, score=s, label=label(s))
            for u, s in scored
        ],
        by_role={role: round(_weighted_mean(per_role[role]), DIGITS) for role in roles},
        by_quarter=_by_quarter(scored, duration),
        by_role_quarter=by_role_quarter,
        start_to_end={role: _start_to_end(by_role_quarter[role]) for role in roles},
    )
