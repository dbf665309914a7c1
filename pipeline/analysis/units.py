"""Text units for local analysis: the sentences and clauses of utterances, quoted verbatim, and the
evidence that cites them. Embedding short units rather than whole turns keeps one topic per vector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.analysis import Evidence
from schemas.common import Role
from schemas.transcript import Utterance

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A clause boundary inside a sentence: a comma, optionally followed by a conjunction that belongs to
# neither side ("…the visit, and I've also added a credit…").
_CLAUSE_BREAK = re.compile(r",\s+(?:and\s+|but\s+|so\s+)?", re.IGNORECASE)
MIN_CLAUSE_WORDS = 3


@dataclass(frozen=True)
class TextUnit:
    """A verbatim piece of one utterance (the whole of it, a sentence or a clause)."""

    utterance: Utterance
    text: str

    @property
    def role(self) -> Role:
        return self.utterance.role

    @property
    def words(self) -> int:
        return len(self.text.split())


def sentences(text: str) -> list[str]:
    """Split at sentence ends; every piece is a substring of `text`."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def clauses(sentence: str) -> list[str]:
    """Comma-separated clauses of at least three words; [] when the sentence has only one."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(sentence) if p.strip()]
    long_enough = [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]
    return long_enough if len(parts) > 1 else []


def text_units(utterances: Sequence[Utterance]) -> list[TextUnit]:
    """Each utterance's sentences and their clauses, plus the whole utterance when it has several
    sentences, in time order. A question is matched against all granularities and keeps the best."""
    units: list[TextUnit] = []
    for utterance in utterances:
        parts = sentences(utterance.text)
        if len(parts) > 1:
            units.append(TextUnit(utterance, utterance.text.strip()))
        for sentence in parts:
            units.append(TextUnit(utterance, sentence))
            units.extend(TextUnit(utterance, c) for c in clauses(sentence))
    return units


def evidence(unit: TextUnit) -> Evidence:
    """Evidence citing the unit's utterance (its id and times) with the unit's text as the quote."""
    return Evidence(
        utterance_id=unit.utterance.id,
        quote=unit.text,
        start_ms=unit.utterance.start_ms,
        end_ms=unit.utterance.end_ms,
    )


def utterance_evidence(utterance: Utterance, quote: str | None = None) -> Evidence:
    return evidence(TextUnit(utterance, quote if quote is not None else utterance.text))
