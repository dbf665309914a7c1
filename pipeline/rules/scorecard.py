"""Scorecard evaluation: answer each item from transcript and metrics, with rationale and evidence.

`evaluate` is pure and deterministic; `load_default_scorecard` reads the packaged default card.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from typing import Literal, NamedTuple

from pydantic import BaseModel

from pipeline.errors import InvalidInput
from pipeline.rules import RULES_VERSION
from pipeline.rules.metrics import call_duration_ms, in_time_order
from schemas.analysis import CallMetrics, Evidence, NonTalk, RoleMetrics
from schemas.common import Role
from schemas.scorecard import (
    Criterion,
    ItemScore,
    ScoreArtifact,
    Scorecard,
    ScorecardItem,
    ScorecardSection,
    SectionScore,
)
from schemas.transcript import Transcript, Utterance

Answer = Literal["yes", "no", "na"]
MAX_EVIDENCE = 3
QUOTE_CHARS = 160
DIGITS = 4
AUTO_FAIL_BAND = "fail"
INVALID_SCORECARD = "invalid_scorecard"
NO_AGENT_RATIONALE = (
    "N/A: no agent speech was identified on this call (for example mono audio without "
    "speaker separation), so this item cannot be judged."
)
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_WORD = re.compile(r"\w+")
_ROLE_VALUES = frozenset(role.value for role in Role)
_ROLE_NAMES = {Role.AGENT: "Agent", Role.CUSTOMER: "Customer", Role.UNKNOWN: "An unknown speaker"}


class _Verdict(NamedTuple):
    answer: Answer
    rationale: str
    evidence: list[Evidence]


@dataclass(frozen=True)
class _Call:
    utterances: list[Utterance]  # time order
    duration_ms: int
    metrics: CallMetrics
    has_agent: bool


class _Hit(NamedTuple):
    utterance: Utterance
    phrase: str
    match: re.Match[str]


# Every path a card may name resolves on this sample; paths that do not are typos.
_SAMPLE_METRICS = CallMetrics(
    duration_ms=0,
    by_role={role: RoleMetrics(utterances=1) for role in Role},
    non_talk=NonTalk(),
    longest_monologue=Evidence(utterance_id="", quote="", start_ms=0, end_ms=0),
    longest_monologue_role=Role.AGENT,
)


# ---- scorecard validation -------------------------------------------------------------------


def validate_scorecard(card: Scorecard) -> None:
    """Raise InvalidInput (code invalid_scorecard) naming the first item that cannot be evaluated.

    Run on upload so a tenant hears about a typo at once; `evaluate` runs it too, so a bad card
    fails the job with a stable code instead of silently marking items N/A.
    """
    for section in card.sections:
        for item in section.items:
            problem = _criterion_problem(item.criterion)
            if problem:
                raise InvalidInput(
                    f"scorecard {card.id}@{card.version} item {item.id!r}: {problem}",
                    code=INVALID_SCORECARD,
                )


def _criterion_problem(criterion: Criterion) -> str | None:
    if criterion.window != "all" and (criterion.within_ms is None or criterion.within_ms < 0):
        return f"window {criterion.window!r} needs a non-negative within_ms"
    if criterion.type == "phrase":
        if not criterion.phrases or not all(_WORD.search(p) for p in criterion.phrases):
            return "a phrase criterion needs phrases, each with at least one word"
        return None
    return _metric_problem(criterion)


def _metric_problem(criterion: Criterion) -> str | None:
    if criterion.metric is None:
        return "a metric criterion needs a metric path"
    if criterion.min is None and criterion.max is None:
        return "a metric criterion needs min, max or both"
    try:
        _metric_node(_SAMPLE_METRICS, criterion.metric)
    except LookupError as exc:
        return str(exc)
    return None


# ---- metric items ---------------------------------------------------------------------------


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


def _metric_verdict(criterion: Criterion, metrics: CallMetrics) -> _Verdict:
    path = criterion.metric or ""
    node = _metric_node(metrics, path)
    if node is None:
        return _Verdict("na", f"N/A: {path} was not measured on this call.", [])
    value = float(len(node)) if isinstance(node, list) else node
    low, high = criterion.min, criterion.max
    within = (low is None or value >= low) and (high is None or value <= high)
    rationale = f"{path} was {_number(value)} (allowed: {_allowed(low, high)})."
    return _Verdict("yes" if within else "no", rationale, _metric_evidence(metrics, path, node))


def _metric_evidence(metrics: CallMetrics, path: str, node: object) -> list[Evidence]:
    """Evidence a reviewer can play back: listed instances, or the longest monologue."""
    if isinstance(node, list):
        return [e for e in node if isinstance(e, Evidence)][:MAX_EVIDENCE]
    if path.startswith("longest_monologue") and metrics.longest_monologue is not None:
        return [metrics.longest_monologue]
    return []


def _number(value: float) -> str:
    return f"{round(value, 2):g}"


def _allowed(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}"
    if high is not None:
        return f"at most {_number(high)}"
    return f"at least {_number(low or 0.0)}"


# ---- phrase items ---------------------------------------------------------------------------


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Case-insensitive, word-bounded; any run of spaces or punctuation may separate the words,
    so "thank you for calling" matches "Thank you, for  calling!" but not "thank your"."""
    words = _WORD.findall(phrase.lower())
    body = r"[\W_]+".join(map(re.escape, words))
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _in_window(utterance: Utterance, criterion: Criterion, duration_ms: int) -> bool:
    """An utterance counts when any part of it falls in the window, edges included: turns are
    the unit of time a transcript gives us."""
    within = criterion.within_ms
    if criterion.window == "all" or within is None:
        return True
    if criterion.window == "first":
        return utterance.start_ms <= within
    return utterance.end_ms >= duration_ms - within


def _hits(criterion: Criterion, call: _Call) -> Iterator[_Hit]:
    """The earliest matching phrase of each eligible utterance, in time order."""
    patterns = [(phrase, phrase_pattern(phrase)) for phrase in criterion.phrases]
    for u in call.utterances:
        if criterion.role not in ("any", u.role):
            continue
        if not _in_window(u, criterion, call.duration_ms):
            continue
        found = [(m, phrase) for phrase, pattern in patterns if (m := pattern.search(u.text))]
        if found:
            match, phrase = min(found, key=lambda f: f[0].start())
            yield _Hit(u, phrase, match)


def _phrase_verdict(criterion: Criterion, call: _Call) -> _Verdict:
    hits = list(islice(_hits(criterion, call), MAX_EVIDENCE))
    if not hits:
        return _Verdict("yes" if criterion.negate else "no", _not_said(criterion), [])
    first = hits[0]
    rationale = (
        f"{_ROLE_NAMES[first.utterance.role]} said '{first.phrase}' "
        f"at {clock(first.utterance.start_ms)}."
    )
    evidence = [_phrase_evidence(hit) for hit in hits]
    return _Verdict("no" if criterion.negate else "yes", rationale, evidence)


def _not_said(criterion: Criterion) -> str:
    listed = [f"'{p}'" for p in criterion.phrases[:3]]
    more = len(criterion.phrases) - len(listed)
    phrases = ", ".join(listed) + (f" or {more} similar phrases" if more else "")
    window = ""
    if criterion.window != "all" and criterion.within_ms is not None:
        window = f" in the {criterion.window} {criterion.within_ms / 1000:g} s"
    if criterion.role == "any":
        return f"No one said {phrases}{window}."
    return f"{_ROLE_NAMES[criterion.role]} did not say {phrases}{window}."


def _phrase_evidence(hit: _Hit) -> Evidence:
    u = hit.utterance
    quote = quote_around(u.text, hit.match.start(), hit.match.end())
    return Evidence(utterance_id=u.id, quote=quote, start_ms=u.start_ms, end_ms=u.end_ms)


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


def clock(ms: int) -> str:
    """m:ss (h:mm:ss past an hour), as a reviewer would scrub to it."""
    minutes, seconds = divmod(max(0, ms) // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


# ---- scoring --------------------------------------------------------------------------------


def _evaluate_item(item: ScorecardItem, call: _Call) -> ItemScore:
    if item.na_when_no_agent and not call.has_agent:
        verdict = _Verdict("na", NO_AGENT_RATIONALE, [])
    elif item.criterion.type == "phrase":
        verdict = _phrase_verdict(item.criterion, call)
    else:
        verdict = _metric_verdict(item.criterion, call.metrics)
    return ItemScore(
        id=item.id,
        label=item.label,
        answer=verdict.answer,
        points=item.weight if verdict.answer == "yes" else 0.0,
        potential=0.0 if verdict.answer == "na" else item.weight,
        rationale=verdict.rationale,
        evidence=verdict.evidence,
        compliance=item.compliance,
        auto_fail=item.auto_fail,
    )


def _ratio(score: float, potential: float) -> float | None:
    return round(score / potential, DIGITS) if potential else None


def _totals(items: Sequence[ItemScore]) -> tuple[float, float]:
    return round(sum(i.points for i in items), DIGITS), round(
        sum(i.potential for i in items), DIGITS
    )


def _section(section: ScorecardSection, call: _Call) -> SectionScore:
    items = [_evaluate_item(item, call) for item in section.items]
    score, potential = _totals(items)
    return SectionScore(
        id=section.id,
        label=section.label,
        score=score,
        potential=potential,
        normalized=_ratio(score, potential),
        items=items,
    )


def band_for(bands: dict[str, float], normalized: float | None) -> str | None:
    """The highest band whose minimum is ≤ normalized; None if nothing scored or no band fits."""
    if normalized is None:
        return None
    fitting = [(minimum, name) for name, minimum in bands.items() if minimum <= normalized]
    return max(fitting)[1] if fitting else None


def evaluate(card: Scorecard, transcript: Transcript, metrics: CallMetrics) -> ScoreArtifact:
    """Score one call. N/A items leave the denominator; an auto-fail item answered 'no' forces
    normalized to 0.0 and band 'fail' (score and potential stay as earned, for review).

    Raises InvalidInput(code='invalid_scorecard') for a card that cannot be evaluated.
    """
    validate_scorecard(card)
    utterances = in_time_order(transcript.utterances)
    call = _Call(
        utterances=utterances,
        duration_ms=call_duration_ms(transcript),
        metrics=metrics,
        has_agent=any(u.role == Role.AGENT for u in utterances),
    )
    sections = [_section(section, call) for section in card.sections]
    items = [item for section in sections for item in section.items]
    score, potential = _totals(items)
    failed = [i.id for i in items if i.auto_fail and i.answer == "no"]
    normalized = 0.0 if failed else _ratio(score, potential)
    return ScoreArtifact(
        scorecard_id=card.id,
        scorecard_version=card.version,
        score=score,
        potential=potential,
        normalized=normalized,
        band=AUTO_FAIL_BAND if failed else band_for(card.bands, normalized),
        auto_failed=bool(failed),
        compliance_score=_ratio(*_totals([i for i in items if i.compliance])),
        sections=sections,
        details={"rules_version": RULES_VERSION, "auto_failed_items": failed},
    )


@functools.cache
def load_default_scorecard() -> Scorecard:
    """The packaged default card (pipeline/rules/default_scorecard.json), validated once per process.

    Callers must not mutate it (evaluation only reads the card).
    """
    text = resources.files("pipeline.rules").joinpath("default_scorecard.json").read_text("utf-8")
    card = Scorecard.model_validate_json(text)
    validate_scorecard(card)
    return card
