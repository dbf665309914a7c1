"""Ground a model's citation in the real transcript: times come from the utterance, never the model.

A citation to an utterance id that does not exist is dropped; a quote that is not in the cited
utterance is replaced by the utterance's own (truncated) text, so evidence never shows invented words.
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


def to_evidence(
    utterance_id: str, quote: str, utterances: Mapping[str, Utterance]
) -> Evidence | None:
    """Evidence for a cited (utterance_id, quote), or None when the id is unknown."""
    utterance = utterances.get(utterance_id.strip())
    if utterance is None:
        return None
    wanted = normalize(quote)
    if wanted and wanted in normalize(utterance.text):
        cited = " ".join(quote.split())
    else:
        cited = truncate(utterance.text)
    return Evidence(
        utterance_id=utterance.id,
        quote=cited,
        start_ms=utterance.start_ms,
        end_ms=utterance.end_ms,
    )
