"""The rule engine: judge one rule tree on a call's facts, with rationale and evidence.

Pure and deterministic. A result is three-valued: holds True/False, or None for N/A (the rule
cannot be judged on this call). `negate` flips True/False and leaves N/A alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import fmean

from pipeline.rules.facts import (
    CallFacts,
    allowed,
    describe_window,
    in_window,
    metric_value,
    number,
    utterance_evidence,
    window_bounds,
    within,
)
from pipeline.rules.metrics import gaps, interruptions, speech_spans
from pipeline.rules.phrases import not_said, phrase_hits, said
from schemas.analysis import Evidence
from schemas.common import Role
from schemas.rules import (
    AllOf,
    AnyOf,
    FindingRule,
    InterruptionRule,
    MetricRule,
    NonTalkRule,
    Order,
    PhraseRule,
    Rule,
    SemanticRule,
    SentimentRule,
    When,
)

MAX_EVIDENCE = 3


@dataclass(frozen=True)
class RuleResult:
    """holds: True / False / None (N/A). `value` is what was measured (hits, a metric, a count)
    for scale and choice items; `at` is (start_ms, char offset) of the earliest hit, for `order`."""

    holds: bool | None
    rationale: str
    evidence: list[Evidence] = field(default_factory=list)
    value: float | None = None
    at: tuple[int, int] | None = None


def evaluate_rule(rule: Rule, facts: CallFacts) -> RuleResult:
    """Judge `rule` on `facts`. Never raises for a card that passed validation."""
    result = _judge(rule, facts)
    if rule.negate and result.holds is not None:
        return dataclasses.replace(result, holds=not result.holds)
    return result


def _judge(rule: Rule, facts: CallFacts) -> RuleResult:  # noqa: PLR0911 - one arm per rule type
    match rule:
        case PhraseRule():
            return _phrase(rule, facts)
        case SentimentRule():
            return _sentiment(rule, facts)
        case InterruptionRule():
            return _interruption(rule, facts)
        case NonTalkRule():
            return _non_talk(rule, facts)
        case MetricRule():
            return _metric(rule, facts)
        case SemanticRule():
            return _semantic(rule, facts)
        case FindingRule():
            return _finding(rule, facts)
        case AnyOf() | AllOf():
            return _group(rule, facts)
        case When():
            return _when(rule, facts)
        case Order():
            return _order(rule, facts)


def rule_roles(rule: Rule) -> set[Role]:
    """The roles a rule tree is about (its phrase, sentiment, interruption and semantic roles)."""
    match rule:
        case AnyOf() | AllOf():
            return set().union(*(rule_roles(r) for r in rule.rules))
        case When():
            return rule_roles(rule.condition) | rule_roles(rule.then)
        case Order():
            return rule_roles(rule.first) | rule_roles(rule.then)
        case PhraseRule() | SentimentRule() | SemanticRule() | InterruptionRule():
            return {rule.role} if isinstance(rule.role, Role) else set()
        case _:
            return set()


def _first_at(evidence: Sequence[Evidence]) -> tuple[int, int] | None:
    return min(((e.start_ms, 0) for e in evidence), default=None)


# ---- leaf rules -----------------------------------------------------------------------------


def _phrase(rule: PhraseRule, facts: CallFacts) -> RuleResult:
    hits = phrase_hits(rule, facts.utterances, window_bounds(rule.window, facts.duration_ms))
    if not hits:
        return RuleResult(False, not_said(rule), value=0.0)
    first = hits[0]
    evidence = [hit.evidence() for hit in hits[:MAX_EVIDENCE]]
    at = (first.utterance.start_ms, first.start)
    return RuleResult(True, said(first), evidence, value=float(len(hits)), at=at)


def _sentiment(rule: SentimentRule, facts: CallFacts) -> RuleResult:
    who = "Everyone" if rule.role == "any" else rule.role.value.capitalize()
    bounds = window_bounds(rule.window, facts.duration_ms)
    scores = {s.utterance_id: s.score for s in facts.sentiment.utterances}
    scored = [
        (u, scores[u.id])
        for u in facts.utterances
        if u.id in scores and rule.role in ("any", u.role) and in_window(u, bounds)
    ]
    if not scored:
        return RuleResult(
            None, f"N/A: no scored speech by {who.lower()}{describe_window(rule.window)}."
        )
    if rule.measure == "change":
        value = _change(rule, facts)
        what = f"{who}'s sentiment changed by {number(value)} from start to end"
    else:
        value = round(fmean(s for _, s in scored), 4)
        what = f"{who}'s mean sentiment{describe_window(rule.window)} was {number(value)}"
    extreme = sorted(scored, key=lambda us: -abs(us[1]))[:MAX_EVIDENCE]
    evidence = [utterance_evidence(u) for u, _ in sorted(extreme, key=lambda us: us[0].start_ms)]
    holds = within(value, rule.min, rule.max)
    rationale = f"{what} (allowed: {allowed(rule.min, rule.max)})."
    return RuleResult(holds, rationale, evidence, value=value)


def _change(rule: SentimentRule, facts: CallFacts) -> float:
    if isinstance(rule.role, Role):
        return facts.sentiment.start_to_end.get(rule.role, 0.0)
    present = [q for q in facts.sentiment.by_quarter if q is not None]
    return round(present[-1] - present[0], 4) if len(present) > 1 else 0.0


def _interruption(rule: InterruptionRule, facts: CallFacts) -> RuleResult:
    measured = facts.metrics.by_role.get(rule.role)
    if measured is None or not measured.utterances:
        return RuleResult(None, f"N/A: the {rule.role.value} did not speak on this call.")
    count = measured.interruptions
    # The same utterances the metric counted, so the evidence always matches the count.
    interrupting = [u for u in interruptions(facts.utterances) if u.role == rule.role]
    evidence = [utterance_evidence(u) for u in interrupting][:MAX_EVIDENCE]
    rationale = (
        f"The {rule.role.value} interrupted {count} time(s) (threshold: above {rule.above})."
    )
    return RuleResult(count > rule.above, rationale, evidence, value=float(count))


def _gaps(facts: CallFacts) -> list[Evidence]:
    """Silences between speech, each cited by the utterance that ends it."""
    return gaps(speech_spans(facts.utterances))


def _non_talk(rule: NonTalkRule, facts: CallFacts) -> RuleResult:
    gaps = _gaps(facts)
    longest = sorted(gaps, key=lambda g: (g.start_ms - (g.end_ms or 0), g.start_ms))
    if rule.share is not None:
        share = facts.metrics.non_talk.ratio
        rationale = f"Silence was {number(share * 100)}% of the call (threshold: above {number(rule.share * 100)}%)."
        evidence = sorted(longest[:MAX_EVIDENCE], key=lambda g: g.start_ms)
        return RuleResult(share > rule.share, rationale, evidence, value=share)
    minimum = rule.min_gap_ms or 0
    long = [g for g in gaps if (g.end_ms or 0) - g.start_ms >= minimum]
    rationale = f"{len(long)} silence(s) of {minimum / 1000:g} s or more (threshold: {rule.count})."
    return RuleResult(
        len(long) >= rule.count, rationale, long[:MAX_EVIDENCE], value=float(len(long))
    )


def _metric(rule: MetricRule, facts: CallFacts) -> RuleResult:
    value, evidence = metric_value(facts.metrics, rule.path)
    if value is None:
        return RuleResult(None, f"N/A: {rule.path} was not measured on this call.")
    rationale = f"{rule.path} was {number(value)} (allowed: {allowed(rule.min, rule.max)})."
    holds = within(value, rule.min, rule.max)
    return RuleResult(holds, rationale, evidence[:MAX_EVIDENCE], value=value)


def _semantic(rule: SemanticRule, facts: CallFacts) -> RuleResult:
    answers = {a.id: a for a in (facts.insights.semantic if facts.insights else [])}
    answer = answers.get(rule.id)
    if answer is None or answer.answer == "na":
        reason = answer.rationale if answer and answer.rationale else "no answer from the analyzer"
        return RuleResult(None, f"N/A: '{rule.question}': {reason}.")
    holds = answer.answer == "yes"
    rationale = answer.rationale or f"The analyzer answered {answer.answer} to '{rule.question}'."
    evidence = answer.evidence[:MAX_EVIDENCE]
    return RuleResult(holds, rationale, evidence, value=float(holds), at=_first_at(evidence))


def _finding(rule: FindingRule, facts: CallFacts) -> RuleResult:
    found = [f for f in facts.findings if f.code in rule.codes]
    if not found:
        return RuleResult(False, f"No finding of {', '.join(rule.codes)}.", value=0.0)
    evidence = [e for f in found for e in f.evidence][:MAX_EVIDENCE]
    rationale = "; ".join(f"{f.code}: {f.description}" for f in found[:MAX_EVIDENCE]) + "."
    return RuleResult(True, rationale, evidence, value=float(len(found)), at=_first_at(evidence))


# ---- combinations ---------------------------------------------------------------------------


def _distinct(evidence: Iterable[Evidence]) -> list[Evidence]:
    """Each piece of evidence once, in order, at most 2 x MAX_EVIDENCE (groups cite their children)."""
    unique: dict[tuple[str, str, int, int | None], Evidence] = {}
    for e in evidence:
        unique.setdefault((e.utterance_id, e.quote, e.start_ms, e.end_ms), e)
    return list(unique.values())[: MAX_EVIDENCE * 2]


def _combine(deciding: Sequence[RuleResult], holds: bool | None, count: int) -> RuleResult:
    evidence = _distinct(e for r in deciding for e in r.evidence)
    rationale = " ".join(r.rationale for r in deciding)
    at = min((r.at for r in deciding if r.holds and r.at is not None), default=None)
    return RuleResult(holds, rationale, evidence, value=float(count), at=at)


def _group(rule: AnyOf | AllOf, facts: CallFacts) -> RuleResult:
    results = [evaluate_rule(r, facts) for r in rule.rules]
    held = [r for r in results if r.holds is True]
    failed = [r for r in results if r.holds is False]
    if not held and not failed:
        return _combine(results, None, 0)
    if isinstance(rule, AnyOf):
        return _combine(held, True, len(held)) if held else _combine(failed, False, 0)
    return _combine(failed, False, len(held)) if failed else _combine(held, True, len(held))


def _when(rule: When, facts: CallFacts) -> RuleResult:
    condition = evaluate_rule(rule.condition, facts)
    if condition.holds is not True:
        return RuleResult(None, f"N/A: {condition.rationale}", condition.evidence)
    then = evaluate_rule(rule.then, facts)
    evidence = _distinct(condition.evidence + then.evidence)
    rationale = f"{condition.rationale} {then.rationale}"
    return RuleResult(then.holds, rationale, evidence, value=then.value, at=then.at)


def _order(rule: Order, facts: CallFacts) -> RuleResult:
    then = evaluate_rule(rule.then, facts)
    if then.holds is not True or then.at is None:
        return RuleResult(None, f"N/A: {then.rationale}")
    first = evaluate_rule(rule.first, facts)
    evidence = (first.evidence[:1] + then.evidence[:1]) if first.holds else then.evidence[:1]
    if first.holds is not True or first.at is None:
        return RuleResult(False, f"{first.rationale} {then.rationale}", evidence, value=0.0)
    before = first.at < then.at
    order = "first" if before else "only after that"
    rationale = f"{first.rationale.rstrip('.')} ({order}). {then.rationale}"
    return RuleResult(before, rationale, evidence, value=float(before), at=first.at)
