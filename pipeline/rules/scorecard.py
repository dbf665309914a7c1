"""Scorecard v2: validate a card, answer each item with the rule engine, and add it all up.

Points: an item earns `weight * points[answer]` of `weight * max(points)`; N/A (when allowed)
leaves the denominator. yes_no answers come straight from the rule; scale/choice answers from
the first `level` holding the rule's measured value (none: the lowest answer). An item "fails"
on its lowest answer; auto-fail then zeroes its section or the whole card, unless the evidence
is too uncertain (low role or ASR confidence), in which case the item needs review instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from statistics import fmean

from pydantic import ValidationError

from pipeline.errors import InvalidInput
from pipeline.rules import RULES_VERSION
from pipeline.rules.engine import RuleResult, evaluate_rule, rule_roles
from pipeline.rules.facts import CallFacts, number
from pipeline.rules.risk import assess_risk
from pipeline.rules.validation import card_problems, walk
from schemas.analysis import Evidence, SemanticQuestion
from schemas.common import Role
from schemas.rules import SemanticRule
from schemas.scorecard import (
    ItemScore,
    ReviewPolicy,
    ScoreArtifact,
    Scorecard,
    ScorecardItem,
    SectionScore,
)

DIGITS = 4
AUTO_FAIL_BAND = "fail"
INVALID_SCORECARD = "invalid_scorecard"


def no_speech_rationale(role: Role) -> str:
    return (
        f"N/A: no {role.value} speech was identified on this call (for example mono audio "
        "without speaker separation), so this item cannot be judged."
    )


def validate_scorecard(card: Scorecard) -> None:
    """Raise InvalidInput(code="invalid_scorecard") naming the path of the first problem:
    duplicate ids, unknown metric paths, regexes that do not compile, points that make no sense."""
    for path, problem in card_problems(card):
        raise InvalidInput(
            f"scorecard {card.id}@{card.version}: {path}: {problem}", code=INVALID_SCORECARD
        )


def parse_scorecard(data: object) -> Scorecard:
    """A validated card from client data (a dict or JSON text); InvalidInput on any problem."""
    try:
        if isinstance(data, str | bytes):
            card = Scorecard.model_validate_json(data)
        else:
            card = Scorecard.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"scorecard: {path}: {first['msg']}", code=INVALID_SCORECARD) from exc
    validate_scorecard(card)
    return card


def semantic_questions(card: Scorecard) -> list[SemanticQuestion]:
    """The questions the analyzer must answer before this card is scored (one per id)."""
    found: dict[str, SemanticQuestion] = {}
    for section in card.sections:
        for item in section.items:
            for rule in walk(item.evaluator):
                if isinstance(rule, SemanticRule) and rule.id not in found:
                    found[rule.id] = SemanticQuestion(
                        id=rule.id, question=rule.question, role=rule.role
                    )
    return list(found.values())


# ---- one item -------------------------------------------------------------------------------


def review_reason(
    item: ScorecardItem, evidence: Sequence[Evidence], facts: CallFacts, policy: ReviewPolicy
) -> str | None:
    """Why a failing auto-fail item must not fail the call on its own, or None when its evidence
    is solid: a cited utterance (or the role the item is about) rests on uncertain role
    attribution, or a cited utterance on uncertain speech recognition."""
    for e in evidence:
        u = facts.by_id.get(e.utterance_id)
        if u is None:
            continue
        if u.role_confidence < policy.role_confidence_min:
            return f"{u.id} is attributed to the {u.role.value} with confidence {number(u.role_confidence)} (< {number(policy.role_confidence_min)})."
        if u.confidence is not None and u.confidence < policy.asr_confidence_min:
            return f"{u.id} was transcribed with confidence {number(u.confidence)} (< {number(policy.asr_confidence_min)})."
    for role in sorted(rule_roles(item.evaluator)):
        spoken = [u.role_confidence for u in facts.utterances if u.role == role]
        if spoken and fmean(spoken) < policy.role_confidence_min:
            return f"the {role.value}'s speech is attributed with mean confidence {number(fmean(spoken))} (< {number(policy.role_confidence_min)})."
    return None


def _judge(item: ScorecardItem, facts: CallFacts) -> RuleResult:
    for role in sorted(rule_roles(item.evaluator)):
        if role != Role.UNKNOWN and not facts.spoke(role):
            return RuleResult(None, no_speech_rationale(role))
    return evaluate_rule(item.evaluator, facts)


def _answer(item: ScorecardItem, result: RuleResult) -> str:
    points = item.answer_points()
    lowest = min(points, key=lambda a: points[a])
    if result.holds is None:
        return "na" if item.na_allowed else lowest
    if item.answer_type == "yes_no":
        return "yes" if result.holds else "no"
    if result.value is None:
        return "na" if item.na_allowed else lowest
    for level in item.levels:
        if (level.min is None or result.value >= level.min) and (
            level.max is None or result.value <= level.max
        ):
            return level.answer
    return lowest


def score_item(item: ScorecardItem, facts: CallFacts, card: Scorecard) -> ItemScore:
    """Answer one item, with its points, evidence and (for a failing auto-fail item) gating."""
    result = _judge(item, facts)
    answer = _answer(item, result)
    points = item.answer_points()
    rationale = result.rationale
    if answer != "na" and result.holds is None:
        rationale = f"Counted as '{answer}' (N/A is not allowed): {rationale}"
    failed = answer != "na" and points[answer] == min(points.values())
    reason = None
    if failed and item.auto_fail != "none":
        reason = review_reason(item, result.evidence, facts, card.review)
    return ItemScore(
        id=item.id,
        label=item.label,
        answer=answer,
        points=0.0 if answer == "na" else round(item.weight * points[answer], DIGITS),
        potential=0.0 if answer == "na" else round(item.weight * max(points.values()), DIGITS),
        rationale=rationale,
        evidence=result.evidence,
        severity=item.severity,
        compliance=item.compliance,
        auto_fail=item.auto_fail,
        failed=failed,
        needs_review=reason is not None,
        review_reason=reason,
    )


# ---- adding up ------------------------------------------------------------------------------


def _ratio(score: float, potential: float) -> float | None:
    return round(score / potential, DIGITS) if potential else None


def _sum(values: Iterator[float] | Sequence[float]) -> float:
    return round(sum(values), DIGITS)


def _fails(item: ItemScore, level: str) -> bool:
    return item.failed and item.auto_fail == level and not item.needs_review


def band_for(bands: dict[str, float], normalized: float | None) -> str | None:
    """The highest band whose minimum is ≤ normalized; None if nothing scored or no band fits."""
    if normalized is None:
        return None
    fitting = [(minimum, name) for name, minimum in bands.items() if minimum <= normalized]
    return max(fitting)[1] if fitting else None


def _section(section_id: str, label: str, items: list[ItemScore]) -> SectionScore:
    failed = any(_fails(i, "section") for i in items)
    score = 0.0 if failed else _sum([i.points for i in items])
    potential = _sum([i.potential for i in items])
    return SectionScore(
        id=section_id,
        label=label,
        score=score,
        potential=potential,
        normalized=0.0 if failed and potential else _ratio(score, potential),
        auto_failed=failed,
        items=items,
    )


def evaluate(
    card: Scorecard, facts: CallFacts, *, risk_triggers: Sequence[str] = ()
) -> ScoreArtifact:
    """Score one call on `card`. Pure and deterministic.

    Raises InvalidInput(code='invalid_scorecard') for a card that cannot be evaluated.
    """
    validate_scorecard(card)
    sections = [
        _section(s.id, s.label, [score_item(item, facts, card) for item in s.items])
        for s in card.sections
    ]
    items = [i for s in sections for i in s.items]
    failed = [i.id for i in items if _fails(i, "card")]
    score, potential = _sum([s.score for s in sections]), _sum([s.potential for s in sections])
    normalized = 0.0 if failed else _ratio(score, potential)
    compliance = [i for i in items if i.compliance]
    reviews = [f"{i.id}: {i.review_reason}" for i in items if i.needs_review]
    return ScoreArtifact(
        scorecard_id=card.id,
        scorecard_version=card.version,
        score=0.0 if failed else score,
        potential=potential,
        normalized=normalized,
        band=AUTO_FAIL_BAND if failed else band_for(card.bands, normalized),
        auto_failed=bool(failed),
        auto_failed_items=failed,
        compliance_score=_ratio(
            _sum([i.points for i in compliance]), _sum([i.potential for i in compliance])
        ),
        needs_review=bool(reviews),
        review_reasons=reviews,
        risk=assess_risk(card, facts, items, risk_triggers=risk_triggers, auto_failed=bool(failed)),
        rules_version=RULES_VERSION,
        sections=sections,
    )
