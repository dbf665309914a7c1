"""Call metrics of a role-attributed transcript: talk, silence, interruptions, pace, monologues.

Pure functions over `schemas`; the analyze stage calls `compute_metrics` and stores the result.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from schemas.analysis import CallMetrics, Evidence, NonTalk, RoleMetrics
from schemas.common import Role
from schemas.transcript import Transcript, Utterance

DEFAULT_GAP_THRESHOLD_MS = 3000
# Talking over someone for less than this is a backchannel ("mm-hm") or a turn handover, not an
# interruption: only the overlap that the interrupted speaker keeps talking through counts.
INTERRUPTION_MIN_OVERLAP_MS = 500
# A shorter pause inside one speaker's stretch is a breath, not a change of turn.
MONOLOGUE_MAX_PAUSE_MS = 1500
MONOLOGUE_QUOTE_CHARS = 120
# Agent and customer are always reported (a silent party is a finding); other roles only if heard.
ALWAYS_REPORTED: tuple[Role, ...] = (Role.AGENT, Role.CUSTOMER)


class Span(NamedTuple):
    """A stretch of speech [start, end) in ms and the utterance that opens it."""

    start: int
    end: int
    first: Utterance


def call_duration_ms(transcript: Transcript) -> int:
    """The call's length: the transcript's duration, or the last utterance's end when that is 0."""
    if transcript.duration_ms > 0:
        return transcript.duration_ms
    return max((u.end_ms for u in transcript.utterances), default=0)


def in_time_order(utterances: Iterable[Utterance]) -> list[Utterance]:
    """Utterances sorted by start, then end; providers do not always deliver them in order."""
    return sorted(utterances, key=lambda u: (u.start_ms, u.end_ms))


def _span(utterance: Utterance) -> Span:
    # A reversed interval is bad provider data; treat it as an instant rather than negative time.
    return Span(utterance.start_ms, max(utterance.start_ms, utterance.end_ms), utterance)


def speech_spans(utterances: Iterable[Utterance]) -> list[Span]:
    """When anyone was speaking: the utterances' spans, merged."""
    return merge_spans(_span(u) for u in utterances)


def gaps(speech: Sequence[Span], *, min_ms: int = 1) -> list[Evidence]:
    """Silences of `min_ms` or more between merged speech spans, each cited by the utterance that
    ends it (quote empty: nobody spoke)."""
    return [
        Evidence(utterance_id=after.first.id, quote="", start_ms=before.end, end_ms=after.start)
        for before, after in itertools.pairwise(speech)
        if after.start - before.end >= min_ms
    ]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Union of spans, sorted: overlapping or touching spans merge, keeping the first opener."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Span(last.start, max(last.end, span.end), last.first)
        else:
            merged.append(span)
    return merged


def _length(spans: Iterable[Span], *, within_ms: int | None = None) -> int:
    """Total ms covered by disjoint spans, optionally clipped to [0, within_ms]."""
    if within_ms is None:
        return sum(s.end - s.start for s in spans)
    return sum(max(0, min(s.end, within_ms) - max(s.start, 0)) for s in spans)


def word_count(text: str) -> int:
    """Words in `text`: whitespace-separated tokens holding at least one letter or digit."""
    return sum(1 for token in text.split() if any(c.isalnum() for c in token))


def count_interruptions(
    utterances: Sequence[Utterance], *, min_overlap_ms: int = INTERRUPTION_MIN_OVERLAP_MS
) -> dict[Role, int]:
    """Interruptions per role (see `interruptions`)."""
    counts = dict.fromkeys(Role, 0)
    for u in interruptions(utterances, min_overlap_ms=min_overlap_ms):
        counts[u.role] += 1
    return counts


def interruptions(
    utterances: Sequence[Utterance], *, min_overlap_ms: int = INTERRUPTION_MIN_OVERLAP_MS
) -> list[Utterance]:
    """The utterances that interrupt someone, in time order.

    An utterance of role R interrupts when an utterance of another role started strictly before
    it and is still going `min_overlap_ms` or more after it starts. Starting together is not an
    interruption, and neither is a backchannel that starts near the end of the other's turn.
    Each utterance counts at most once. `utterances` must be in time order.
    """
    found: list[Utterance] = []
    latest_end: dict[Role, int] = {}  # per role: the latest end among utterances already started
    for _, group in itertools.groupby(utterances, key=lambda u: u.start_ms):
        started = list(group)
        for u in started:
            other_end = max(
                (end for role, end in latest_end.items() if role != u.role), default=None
            )
            if other_end is not None and other_end - u.start_ms >= min_overlap_ms:
                found.append(u)
        for u in started:
            latest_end[u.role] = max(latest_end.get(u.role, u.end_ms), u.end_ms)
    return found


def _speaks_between(others: Sequence[Span], ends: Sequence[int], lo: int, hi: int) -> bool:
    """Whether any of the disjoint sorted `others` overlaps the open interval (lo, hi)."""
    if hi <= lo:
        return False
    i = bisect_right(ends, lo)
    return i < len(others) and others[i].start < hi


def monologues(utterances: Sequence[Utterance], role: Role) -> list[Span]:
    """Stretches of `role`'s speech, joining its turns across pauses < MONOLOGUE_MAX_PAUSE_MS
    unless another role speaks during the pause. `utterances` must be in time order."""
    own = [_span(u) for u in utterances if u.role == role]
    others = merge_spans(_span(u) for u in utterances if u.role != role)
    ends = [s.end for s in others]
    runs: list[Span] = []
    for span in own:
        if runs:
            last = runs[-1]
            pause = span.start - last.end
            if pause < MONOLOGUE_MAX_PAUSE_MS and not _speaks_between(
                others, ends, last.end, span.start
            ):
                runs[-1] = Span(last.start, max(last.end, span.end), last.first)
                continue
        runs.append(span)
    return runs


def _longest(runs: Iterable[Span]) -> Span | None:
    """The longest run; the earliest wins a tie so results are stable."""
    return min(runs, key=lambda s: (-(s.end - s.start), s.start), default=None)


def _quote(text: str) -> str:
    text = text.strip()
    if len(text) <= MONOLOGUE_QUOTE_CHARS:
        return text
    return text[: MONOLOGUE_QUOTE_CHARS - 1].rstrip() + "…"


def _non_talk(speech: Sequence[Span], duration_ms: int, threshold_ms: int) -> NonTalk:
    """Silence: everything outside speech (leading and trailing too); instances are the gaps
    ≥ threshold *between* speech, each cited by the utterance that ends it."""
    total = max(0, duration_ms - _length(speech, within_ms=duration_ms))
    instances = gaps(speech, min_ms=threshold_ms)
    ratio = round(total / duration_ms, 4) if duration_ms else 0.0
    return NonTalk(total_ms=total, ratio=ratio, instances=instances, threshold_ms=threshold_ms)


def _role_metrics(
    utterances: Sequence[Utterance],
    *,
    talk_ms: int,
    total_talk_ms: int,
    interruptions: int,
    longest: Span | None,
) -> RoleMetrics:
    words = sum(word_count(u.text) for u in utterances)
    return RoleMetrics(
        talk_ms=talk_ms,
        talk_ratio=round(talk_ms / total_talk_ms, 4) if total_talk_ms else 0.0,
        utterances=len(utterances),
        words=words,
        words_per_minute=round(words * 60_000 / talk_ms, 1) if talk_ms else None,
        interruptions=interruptions,
        longest_monologue_ms=_run_ms(longest),
    )


def _run_ms(run: Span | None) -> int:
    return run.end - run.start if run else 0


def _reported_roles(utterances: Sequence[Utterance]) -> list[Role]:
    heard = {u.role for u in utterances}
    return [role for role in Role if role in ALWAYS_REPORTED or role in heard]


def compute_metrics(
    transcript: Transcript,
    *,
    gap_threshold_ms: int = DEFAULT_GAP_THRESHOLD_MS,
    min_interrupt_overlap_ms: int = INTERRUPTION_MIN_OVERLAP_MS,
) -> CallMetrics:
    """Talk, silence, interruptions, pace and monologues of one call (see the module constants).

    talk_ratio is a role's talk over the sum of all roles' talk, so ratios add up to 1 even when
    people talk over each other. Deterministic; never raises on well-formed schemas.
    """
    utterances = in_time_order(transcript.utterances)
    roles = _reported_roles(utterances)
    per_role = {role: [u for u in utterances if u.role == role] for role in roles}
    talk = {role: _length(merge_spans(map(_span, per_role[role]))) for role in roles}
    runs = {role: monologues(utterances, role) for role in roles}
    interruptions = count_interruptions(utterances, min_overlap_ms=min_interrupt_overlap_ms)
    by_role = {
        role: _role_metrics(
            per_role[role],
            talk_ms=talk[role],
            total_talk_ms=sum(talk.values()),
            interruptions=interruptions[role],
            longest=_longest(runs[role]),
        )
        for role in roles
    }
    longest = _longest(run for role_runs in runs.values() for run in role_runs)
    duration = call_duration_ms(transcript)
    return CallMetrics(
        duration_ms=duration,
        by_role=by_role,
        non_talk=_non_talk(speech_spans(utterances), duration, gap_threshold_ms),
        longest_monologue=_monologue_evidence(longest),
        longest_monologue_role=longest.first.role if longest else None,
        longest_monologue_ms=_run_ms(longest),
    )


def _monologue_evidence(run: Span | None) -> Evidence | None:
    if run is None:
        return None
    return Evidence(
        utterance_id=run.first.id, quote=_quote(run.first.text), start_ms=run.start, end_ms=run.end
    )
