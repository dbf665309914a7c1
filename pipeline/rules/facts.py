"""What the rule engine judges a call on (`CallFacts`), and the shared ways it cites the call:
windows over the call's time, quotes around a match, a reviewer's clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from pipeline.rules.metrics import call_duration_ms, in_time_order
from schemas.analysis import (
    CallMetrics,
    Evidence,
    Finding,
    Insights,
    NonTalk,
    RoleMetrics,
    SentimentReport,
)
from schemas.common import Role
from schemas.rules import Window
from schemas.transcript import Transcript, Utterance

QUOTE_CHARS = 160
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


@dataclass(frozen=True)
class CallFacts:
    """Everything a rule may look at. `findings` are violations found by others (analyzer, PCI
    detector, contact-policy checks); `metadata` is the job's call metadata."""

    transcript: Transcript
    metrics: CallMetrics
    sentiment: SentimentReport
    insights: Insights | None = None
    findings: Sequence[Finding] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def utterances(self) -> list[Utterance]:
        """In time order."""
        return in_time_order(self.transcript.utterances)

    @functools.cached_property
    def by_id(self) -> dict[str, Utterance]:
        return {u.id: u for u in self.transcript.utterances}

    @functools.cached_property
    def duration_ms(self) -> int:
        return call_duration_ms(self.transcript)

    def spoke(self, role: Role) -> bool:
        return any(u.role == role for u in self.utterances)


def window_bounds(window: Window | None, duration_ms: int) -> tuple[float, float]:
    """[lo, hi] in ms of the call that `window` covers (the whole call for None)."""
    if window is None:
        return 0.0, float(max(duration_ms, 0))
    if window.seconds is not None:
        size = window.seconds * 1000
    else:
        size = duration_ms * (window.percent or 0.0) / 100
    if window.anchor == "first":
        return 0.0, size
    return duration_ms - size, float(duration_ms)


def in_window(utterance: Utterance, bounds: tuple[float, float]) -> bool:
    """Any part of the utterance in [lo, hi], edges included: turns are the transcript's unit."""
    lo, hi = bounds
    return utterance.start_ms <= hi and utterance.end_ms >= lo


def describe_window(window: Window | None) -> str:
    if window is None:
        return ""
    if window.seconds is not None:
        return f" in the {window.anchor} {window.seconds:g} s"
    return f" in the {window.anchor} {window.percent:g}% of the call"


def quote_around(text: str, start: int, end: int, *, limit: int = QUOTE_CHARS) -> str:
    """The sentence holding text[start:end], cut to about `limit` characters around the match."""
    lo, hi = 0, len(text)
    for mark in _SENTENCE_END.finditer(text):
        if mark.end() <= start:
            lo = mark.end()
        elif mark.start() >= end:
            hi = mark.end()
            break
    sentence = text[lo:hi]
    if len(sentence) <= limit:
        return sentence.strip()
    cut = max(0, min(start - lo - limit // 3, len(sentence) - limit))
    head = "…" if cut > 0 else ""
    tail = "…" if cut + limit < len(sentence) else ""
    return head + sentence[cut : cut + limit].strip() + tail


def utterance_evidence(utterance: Utterance, *, quote: str | None = None) -> Evidence:
    text = utterance.text if quote is None else quote
    return Evidence(
        utterance_id=utterance.id,
        quote=quote_around(text, 0, 0) if quote is None else text,
        start_ms=utterance.start_ms,
        end_ms=utterance.end_ms,
    )


def clock(ms: float) -> str:
    """m:ss (h:mm:ss past an hour), as a reviewer would scrub to it."""
    minutes, seconds = divmod(int(max(0, ms)) // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def number(value: float) -> str:
    return f"{round(value, 2):g}"


def allowed(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{number(low)} to {number(high)}"
    if high is not None:
        return f"at most {number(high)}"
    return f"at least {number(low or 0.0)}"


def within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


# ---- metric paths ---------------------------------------------------------------------------

_ROLE_VALUES = frozenset(role.value for role in Role)
# Every path a card may name resolves on this sample; paths that do not are typos.
_SAMPLE_METRICS = CallMetrics(
    duration_ms=0,
    by_role={role: RoleMetrics(utterances=1) for role in Role},
    non_talk=NonTalk(),
    longest_monologue=Evidence(utterance_id="", quote="", start_ms=0, end_ms=0),
    longest_monologue_role=Role.AGENT,
)


def _metric_node(metrics: CallMetrics, path: str) -> float | list[object] | None:
    """Value at a dotted path, or None when it was not measured on this call (a None field, or a
    role that never spoke: its zeros mean nothing). A list (of instances) is returned as is.
    Raises LookupError for a path that names no number or list."""
    node: object = metrics
    for part in path.split("."):
        if node is None:
            return None
        if isinstance(node, dict):
            if part not in _ROLE_VALUES:
                raise LookupError(f"unknown role {part!r} in metric {path!r}")
            found = node.get(Role(part))
            node = found if isinstance(found, RoleMetrics) and found.utterances else None
        elif isinstance(node, BaseModel) and part in type(node).model_fields:
            node = getattr(node, part)
        else:
            raise LookupError(f"unknown metric {path!r}")
    if node is None or isinstance(node, list):
        return node
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)
    raise LookupError(f"metric {path!r} is not a number or a list")


def metric_path_problem(path: str) -> str | None:
    """Why `path` names no CallMetrics number or list, or None when it does."""
    try:
        _metric_node(_SAMPLE_METRICS, path)
    except LookupError as exc:
        return str(exc)
    return None


def metric_value(metrics: CallMetrics, path: str) -> tuple[float | None, list[Evidence]]:
    """The value at `path` (a list counts its length) and evidence a reviewer can play back:
    listed instances, or the longest monologue. None when not measured on this call."""
    node = _metric_node(metrics, path)
    if node is None:
        return None, []
    if isinstance(node, list):
        return float(len(node)), [e for e in node if isinstance(e, Evidence)]
    if path.startswith("longest_monologue") and metrics.longest_monologue is not None:
        return node, [metrics.longest_monologue]
    return node, []
