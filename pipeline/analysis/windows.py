"""Long calls in bounded windows of utterances, and the merge of the windows' findings (pure).

Consecutive windows share `overlap` utterances, so what a window finds near its edge is found again
by the next one: merges key every finding by the utterance it cites, and the shared part counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from pipeline.analysis.intents import MARGIN, MAX_INTENTS, IntentMatch
from pipeline.analysis.outcomes import MAX_EVIDENCE, ActionItem
from schemas.analysis import Evidence, Finding, Intent, SemanticAnswer

T = TypeVar("T")
ANSWER_RANK = {"yes": 2, "no": 1, "na": 0}


def windows(items: Sequence[T], *, size: int, overlap: int) -> list[Sequence[T]]:
    """Slices of at most `size` items, each starting `size - overlap` after the previous one, the
    last one ending with the sequence; one slice (the whole) when `size` is 0 or not exceeded."""
    if size <= 0 or len(items) <= size:
        return [items]
    step = size - min(overlap, size - 1)
    slices = [items[0:size]]
    start = 0
    while start + size < len(items):
        start += step
        slices.append(items[start : start + size])
    return slices


def merge_evidence(groups: Iterable[Iterable[Evidence]]) -> list[Evidence]:
    """Evidence in first-seen order, each (utterance, quote) once."""
    seen: dict[tuple[str, str], Evidence] = {}
    for group in groups:
        for item in group:
            seen.setdefault((item.utterance_id, item.quote), item)
    return list(seen.values())


def merge_actions(groups: Iterable[Iterable[ActionItem]]) -> list[ActionItem]:
    """Action items in time order, each (utterance, sentence) once: a promise repeated in another
    utterance stays, the same promise seen by two overlapping windows does not."""
    seen: dict[tuple[str, str], ActionItem] = {}
    for group in groups:
        for item in group:
            seen.setdefault((item.utterance.id, item.text), item)
    return list(seen.values())


def merge_outcomes(groups: Iterable[dict[str, list[Evidence]]]) -> dict[str, list[Evidence]]:
    """Outcome evidence by label, joined across windows without repeats."""
    joined: dict[str, list[list[Evidence]]] = {}
    for found in groups:
        for label, evidence in found.items():
            joined.setdefault(label, []).append(evidence)
    return {label: merge_evidence(lists) for label, lists in joined.items()}


def merge_findings(groups: Iterable[Iterable[Finding]], *, order: Sequence[str]) -> list[Finding]:
    """One finding per description, its evidence joined (first `MAX_EVIDENCE` in time order),
    listed in `order` (descriptions), unknown ones last."""
    joined: dict[str, list[Finding]] = {}
    for group in groups:
        for finding in group:
            joined.setdefault(finding.description, []).append(finding)
    rank = {description: i for i, description in enumerate(order)}
    merged = [
        found[0].model_copy(
            update={"evidence": merge_evidence(f.evidence for f in found)[:MAX_EVIDENCE]}
        )
        for found in joined.values()
    ]
    return sorted(merged, key=lambda f: rank.get(f.description, len(rank)))


def merge_intents(
    groups: Iterable[Iterable[tuple[IntentMatch, Evidence]]],
) -> list[Intent]:
    """Each intent at its best window, kept (as in one window) when within `MARGIN` of the
    strongest, strongest first, at most `MAX_INTENTS`."""
    best: dict[str, tuple[IntentMatch, Evidence]] = {}
    for group in groups:
        for match, evidence in group:
            if match.name not in best or match.similarity > best[match.name][0].similarity:
                best[match.name] = (match, evidence)
    if not best:
        return []
    top = max(m.similarity for m, _ in best.values())
    ranked = sorted(best.values(), key=lambda pair: -pair[0].similarity)
    return [
        Intent(name=m.name, confidence=m.confidence, evidence=[e])
        for m, e in ranked
        if m.similarity >= top - MARGIN
    ][:MAX_INTENTS]


def merge_answers(groups: Sequence[Sequence[SemanticAnswer]]) -> list[SemanticAnswer]:
    """Per question (in the first window's order): "yes" over "no" over "na"; among yeses the most
    confident, among noes the least (its best line came closest), as one window over the whole
    call would answer."""
    if not groups:
        return []
    merged: list[SemanticAnswer] = []
    for position in range(len(groups[0])):
        mine = [group[position] for group in groups]
        rank = max(ANSWER_RANK[a.answer] for a in mine)
        chosen = [a for a in mine if ANSWER_RANK[a.answer] == rank]
        sign = -1.0 if chosen[0].answer == "no" else 1.0
        merged.append(max(chosen, key=lambda a: sign * (a.confidence or 0.0)))
    return merged
