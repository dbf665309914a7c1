"""Ground a model's citation in the real transcript: times come from the utterance, never the model.

A citation to an utterance id that does not exist is dropped; a quote is re-spelled from the cited
utterance, or replaced by its (truncated) text when not found there: evidence never shows invented words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.analysis import Evidence
from schemas.transcript import Utterance

QUOTE_CHARS = 160


def index(utterances: Iterable[Utterance]) -> dict[str, Utterance]:
    """Utterances by id, the lookup `to_evidence` takes."""
    return {u.id: u for u in utterances}


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive form used to compare a quote with an utterance."""
    return " ".join(text.casefold().split())


def truncate(text: str, *, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def locate(quote: str, text: str) -> str | None:
    """The words of `text` that `quote` matches case- and whitespace-insensitively, spelled as in
    `text` (whitespace collapsed, widened to whole words); None when empty or not there."""
    wanted = normalize(quote)
    if not wanted:
        return None
    folded: list[str] = []
    origin: list[int] = []  # folded character → index in text (casefold may lengthen a char)
    for i, char in enumerate(text):
        if char.isspace():
            if folded and folded[-1] != " ":
                folded.append(" ")
                origin.append(i)
            continue
        for piece in char.casefold():
            folded.append(piece)
            origin.append(i)
    start = "".join(folded).find(wanted)
    if start < 0:
        return None
    first, end = origin[start], origin[start + len(wanted) - 1] + 1
    # Whole words: a quote cut mid-word ("ig do") is shown as the words it touches ("big dog").
    while first > 0 and text[first - 1].isalnum():
        first -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return " ".join(text[first:end].split())


def to_evidence(
    utterance_id: str, quote: str, utterances: Mapping[str, Utterance]
) -> Evidence | None:
    """Evidence for a cited (utterance_id, quote), or None when the id is unknown."""
    utterance = utterances.get(utterance_id.strip())
    if utterance is None:
        return None
    return Evidence(
        utterance_id=utterance.id,
        quote=locate(quote, utterance.text) or truncate(utterance.text),
        start_ms=utterance.start_ms,
        end_ms=utterance.end_ms,
    )
