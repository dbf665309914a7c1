"""Extractive summary and topics (pure): the call's most central, informative utterances, quoted
verbatim in time order as "Customer: … Agent: …", so nothing is said that was not said.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.analysis.units import sentences
from schemas.common import Role
from schemas.transcript import Utterance

Vectors = npt.NDArray[np.float32]

MAX_CHARS = 600
MAX_QUOTE_CHARS = 200
INFORMATIVE_WORDS = 8  # shorter turns ("Okay, good.") are weighted down proportionally
BOILERPLATE_WEIGHT = 0.3
ISSUE_BONUS = 0.5  # the customer's first substantive turn usually states why they called
HIGHLIGHT_BONUS = 0.3  # turns holding the outcome or a commitment
SUBSTANTIVE_WORDS = 6
_BOILERPLATE = re.compile(
    r"thank(?:s| you) for (?:calling|holding|your patience)|have a (?:great|good|nice) day|"
    r"how (?:can|may) i help|anything else|you're welcome|my name is|verify your identity|"
    r"confirm (?:the|your) (?:name|address|date of birth)|account number",
    re.IGNORECASE,
)
# Words that mark what a call is about, for scoring without embeddings.
_KEYWORDS = re.compile(
    r"\b(?:charg\w*|bill\w*|fee|refund\w*|payment|pay|cancel\w*|account|order|deliver\w*|"
    r"broken|working|error|problem|issue|credit|balance|plan|upgrade|technician|complain\w*)\b",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    {
        "a",
        "about",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "hello",
        "her",
        "here",
        "him",
        "his",
        "how",
        "i",
        "i'm",
        "i'll",
        "i've",
        "if",
        "in",
        "is",
        "it",
        "it's",
        "just",
        "know",
        "like",
        "me",
        "my",
        "no",
        "not",
        "now",
        "of",
        "okay",
        "ok",
        "on",
        "or",
        "our",
        "out",
        "please",
        "so",
        "some",
        "than",
        "thank",
        "thanks",
        "that",
        "that's",
        "the",
        "their",
        "them",
        "then",
        "there",
        "this",
        "to",
        "today",
        "too",
        "up",
        "us",
        "was",
        "we",
        "we'll",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "yeah",
        "yes",
        "you",
        "you're",
        "your",
        "sure",
        "right",
        "well",
        "great",
        "good",
        "day",
        "call",
        "calling",
        "help",
        "there's",
        "can't",
        "don't",
        "let",
        "one",
        "two",
        "see",
        "need",
        "want",
    }
)


def centrality(vectors: Vectors) -> Vectors:
    """Cosine similarity of each (unit-normalised) row to the normalised centroid of all rows."""
    centroid = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centroid)) or 1.0
    scores: Vectors = (vectors @ (centroid / norm)).astype(np.float32)
    return scores


def _weight(utterance: Utterance) -> float:
    informative = min(1.0, len(utterance.text.split()) / INFORMATIVE_WORDS)
    return informative * (BOILERPLATE_WEIGHT if _BOILERPLATE.search(utterance.text) else 1.0)


def _keyword_scores(utterances: Sequence[Utterance]) -> list[float]:
    """Fallback without embeddings: keyword hits, with earlier turns (where the issue is stated)
    slightly ahead of later ones."""
    n = max(1, len(utterances))
    return [
        (1 + len(_KEYWORDS.findall(u.text))) * (1.0 - 0.3 * i / n) for i, u in enumerate(utterances)
    ]


def _picks(scores: list[float], utterances: Sequence[Utterance], count: int) -> list[int]:
    """The best customer turn and the best agent turn first (issue and response), then the rest
    by score."""
    order = sorted(range(len(utterances)), key=lambda i: -scores[i])
    chosen: list[int] = []
    for role in (Role.CUSTOMER, Role.AGENT):
        chosen.extend(next(([i] for i in order if utterances[i].role == role), []))
    # Only the first `count` are needed: scanning the whole order against the list was O(n²).
    for i in order:
        if len(chosen) >= count:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen[:count]


def _quote(text: str) -> str:
    """The utterance's leading sentences up to MAX_QUOTE_CHARS; a single overlong sentence is cut
    at a word boundary and marked with an ellipsis."""
    kept = ""
    for sentence in sentences(text):
        candidate = f"{kept} {sentence}".strip()
        if len(candidate) > MAX_QUOTE_CHARS:
            break
        kept = candidate
    if kept:
        return kept
    return text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _bonus(utterances: Sequence[Utterance], highlights: frozenset[str]) -> list[float]:
    issue = next(
        (
            u.id
            for u in utterances
            if u.role == Role.CUSTOMER and len(u.text.split()) >= SUBSTANTIVE_WORDS
        ),
        None,
    )
    return [
        1.0
        + (ISSUE_BONUS if u.id == issue else 0.0)
        + (HIGHLIGHT_BONUS if u.id in highlights else 0.0)
        for u in utterances
    ]


def summarize(
    utterances: Sequence[Utterance],
    vectors: Vectors | None = None,
    *,
    highlights: frozenset[str] = frozenset(),
    max_chars: int = MAX_CHARS,
) -> str:
    """2 to 4 utterances (2 for a short call, 4 for a long one), in time order, at most `max_chars`.

    With `vectors` (one unit-normalised row per utterance) the score is centrality times informativeness;
    without, keyword hits. The customer's first substantive turn and the `highlights` (utterance
    ids holding the outcome or a commitment) are favoured. Returns "" for an empty call.
    """
    if not utterances:
        return ""
    count = 2 if len(utterances) <= 8 else 3 if len(utterances) <= 30 else 4
    picks = best_utterances(utterances, vectors, highlights=highlights, count=count)
    while picks:
        text = " ".join(_line(utterances[i]) for i in sorted(picks))
        if len(text) <= max_chars:
            return text
        picks = picks[:-1]  # drop the lowest-scored pick until the summary fits
    return ""


def best_utterances(
    utterances: Sequence[Utterance],
    vectors: Vectors | None,
    *,
    highlights: frozenset[str],
    count: int,
) -> list[int]:
    """Indices of the `count` utterances `summarize` would quote first, best first (a window of a
    long call offers these as its candidates for the call's summary)."""
    if not utterances:
        return []
    if vectors is not None and len(vectors) == len(utterances):
        base = [float(c) for c in centrality(vectors)]
    else:
        base = _keyword_scores(utterances)
    bonus = _bonus(utterances, highlights)
    scores = [s * _weight(u) * b for s, u, b in zip(base, utterances, bonus, strict=True)]
    return _picks(scores, utterances, count)


def _line(utterance: Utterance) -> str:
    speaker = utterance.role.value.capitalize() if utterance.role != Role.UNKNOWN else "Speaker"
    return f"{speaker}: {_quote(utterance.text)}"


def salient_terms(utterances: Sequence[Utterance], *, limit: int = 3) -> list[str]:
    """The most frequent content words of the call (≥ 4 letters, not stopwords), for topics."""
    words = (w.lower().strip("'") for u in utterances for w in re.findall(r"[A-Za-z']+", u.text))
    counts = Counter(w for w in words if len(w) >= 4 and w not in _STOPWORDS)
    return [w for w, _ in counts.most_common(limit)]


def topics(intent_names: Sequence[str], utterances: Sequence[Utterance]) -> list[str]:
    """The intents in words ("billing_question" → "billing question"); salient terms when none."""
    if intent_names:
        return [name.replace("_", " ") for name in intent_names]
    return salient_terms(utterances)
