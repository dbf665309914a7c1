"""What is wrong with a scorecard, by path: checks pydantic cannot make alone (unique ids, metric
paths, regexes, points and levels, semantic ids), so a tenant hears about a typo on upload.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from pipeline.rules.facts import metric_path_problem
from pipeline.rules.phrases import regex_problem
from schemas.rules import (
    AllOf,
    AnyOf,
    MetricRule,
    Order,
    PhraseRule,
    Rule,
    SemanticRule,
    SentimentRule,
    When,
)
from schemas.scorecard import Scorecard, ScorecardItem

_WORD = re.compile(r"\w+")
Problem = tuple[str, str]  # (path, what is wrong)


def walk(rule: Rule, path: str = "evaluator") -> Iterator[Rule]:
    """Every rule of a tree, depth first."""
    for _, node in walk_paths(rule, path):
        yield node


def walk_paths(rule: Rule, path: str = "evaluator") -> Iterator[tuple[str, Rule]]:
    """Every rule of a tree with its path (e.g. "evaluator.rules[1].then"), depth first."""
    yield path, rule
    match rule:
        case AnyOf() | AllOf():
            for i, child in enumerate(rule.rules):
                yield from walk_paths(child, f"{path}.rules[{i}]")
        case When():
            yield from walk_paths(rule.condition, f"{path}.condition")
            yield from walk_paths(rule.then, f"{path}.then")
        case Order():
            yield from walk_paths(rule.first, f"{path}.first")
            yield from walk_paths(rule.then, f"{path}.then")
        case _:
            pass


def card_problems(card: Scorecard) -> Iterator[Problem]:
    """Every problem of the card, in card order (empty for a usable card)."""
    seen_sections: set[str] = set()
    seen_items: set[str] = set()
    questions: dict[str, str] = {}
    for name, minimum in card.bands.items():
        if not 0 <= minimum <= 1:
            yield f"bands.{name}", "a band's minimum is a normalized score between 0 and 1"
    for s, section in enumerate(card.sections):
        if section.id in seen_sections:
            yield f"sections[{s}].id", f"duplicate section id {section.id!r}"
        seen_sections.add(section.id)
        for i, item in enumerate(section.items):
            path = f"sections[{s}].items[{i}]"
            if item.id in seen_items:
                yield f"{path}.id", f"duplicate item id {item.id!r}"
            seen_items.add(item.id)
            yield from ((f"{path}.{p}", m) for p, m in _answer_problems(item))
            for rule_path, rule in walk_paths(item.evaluator):
                problem = _rule_problem(rule, questions)
                if problem:
                    yield f"{path}.{rule_path}", problem


def _answer_problems(item: ScorecardItem) -> Iterator[Problem]:
    points = item.answer_points()
    if not points or any(not math.isfinite(v) or v < 0 for v in points.values()):
        yield "points", "points must be finite and non-negative"
        return
    if max(points.values()) <= 0:
        yield "points", "at least one answer must earn points"
    if "na" in points:
        yield "points", "'na' is not an answer: set na_allowed instead"
    if item.answer_type == "yes_no":
        if set(points) != {"yes", "no"}:
            yield "points", "a yes_no item has points for exactly 'yes' and 'no'"
        if item.levels:
            yield "levels", "a yes_no item takes its answer from the rule, not from levels"
        return
    if item.answer_type == "scale" and not all(a.lstrip("-").isdigit() for a in points):
        yield "points", "a scale item's answers are whole numbers, e.g. '1' … '5'"
    if not item.levels:
        yield "levels", f"a {item.answer_type} item needs levels mapping the value to answers"
    for n, level in enumerate(item.levels):
        if level.answer not in points:
            yield f"levels[{n}].answer", f"{level.answer!r} has no points"
        if level.min is not None and level.max is not None and level.min > level.max:
            yield f"levels[{n}]", "min is above max"


def _rule_problem(rule: Rule, questions: dict[str, str]) -> str | None:  # noqa: PLR0911
    match rule:
        case PhraseRule():
            if rule.match == "regex":
                return regex_problem(rule.phrases)
            if not all(_WORD.search(p) for p in rule.phrases):
                return "every phrase needs at least one word"
        case MetricRule():
            if rule.min is None and rule.max is None:
                return "a metric rule needs min, max or both"
            return metric_path_problem(rule.path)
        case SentimentRule():
            if rule.min is None and rule.max is None:
                return "a sentiment rule needs min, max or both"
            if rule.measure == "change" and rule.window is not None:
                return "measure 'change' compares the start and end: it takes no window"
        case SemanticRule():
            known = questions.setdefault(rule.id, rule.question)
            if known != rule.question:
                return f"semantic id {rule.id!r} is used for two different questions"
        case _:
            pass
    return None
