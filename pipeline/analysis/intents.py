"""Customer intents by embedding similarity to a few exemplar phrases per intent (multi-label).

Pure: functions take unit-normalised vectors (numpy), so they are tested without the model. The
taxonomy is the tenant's (`ClientContext.intents`) when given, else default_intents.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.analysis.units import TextUnit
from schemas.common import Role
from schemas.tenant import IntentDef

Vectors = npt.NDArray[np.float32]

# Cosine similarities measured with all-MiniLM-L6-v2 on tests/support/analysis_labels.py: customer
# sentences that carry an intent score 0.26 to 0.75 (median 0.52) against their intent's exemplars;
# acknowledgements and details ("Sure, it's 4 4 1 9 0 2.") stay below 0.38.
THRESHOLD = 0.42
SIM_FLOOR = 0.25  # calibrated confidence 0 …
SIM_CEILING = 0.75  # … to 1
TOP_EXEMPLARS = 2  # an intent's score: mean of its two best exemplars (28/30 vs 26/30 for max)
MAX_INTENTS = 3
MARGIN = 0.15  # a second intent must come within this of the first
MIN_WORDS = 3  # "Okay." or "Yes, please." carry no intent


def exemplars(intents: tuple[IntentDef, ...]) -> tuple[list[str], list[int]]:
    """Exemplar texts and, for each, the index of its intent. An intent without examples is
    represented by its description, or else its name in words ("order_status" → "order status")."""
    texts: list[str] = []
    owners: list[int] = []
    for index, intent in enumerate(intents):
        phrases = intent.examples or [intent.description or intent.name.replace("_", " ")]
        texts.extend(phrases)
        owners.extend([index] * len(phrases))
    return texts, owners


def intent_scores(units: Vectors, exemplar_vectors: Vectors, owners: list[int]) -> Vectors:
    """Similarity of each unit (row) to each intent (column): the mean of the intent's
    `TOP_EXEMPLARS` most similar exemplars. Rows of both inputs must be unit-normalised."""
    owner = np.asarray(owners)
    n_intents = int(owner.max()) + 1 if owner.size else 0
    sims = units @ exemplar_vectors.T
    scores = np.zeros((units.shape[0], n_intents), dtype=np.float32)
    for intent in range(n_intents):
        own = np.sort(sims[:, owner == intent], axis=1)[:, ::-1][:, :TOP_EXEMPLARS]
        scores[:, intent] = own.mean(axis=1) if own.shape[1] else 0.0
    return scores


def calibrate(similarity: float) -> float:
    """Map a cosine similarity to a 0..1 confidence, linear between SIM_FLOOR and SIM_CEILING."""
    value = (similarity - SIM_FLOOR) / (SIM_CEILING - SIM_FLOOR)
    return round(min(1.0, max(0.0, value)), 3)


def classify(scores: Vectors, names: list[str]) -> list[str]:
    """The single best intent of each unit (for measuring accuracy)."""
    return [names[int(i)] for i in np.argmax(scores, axis=1)]


@dataclass(frozen=True)
class IntentMatch:
    name: str
    confidence: float
    similarity: float
    unit: int  # index of the best unit: the evidence


def detect_intents(
    scores: Vectors,
    names: list[str],
    *,
    threshold: float = THRESHOLD,
    max_intents: int = MAX_INTENTS,
    margin: float = MARGIN,
) -> list[IntentMatch]:
    """A call's intents: each intent whose best unit reaches `threshold` and comes within `margin`
    of the strongest intent, strongest first, at most `max_intents`."""
    if scores.size == 0:
        return []
    best_units = np.argmax(scores, axis=0)
    best = scores[best_units, np.arange(scores.shape[1])]
    top = float(best.max())
    matches = [
        IntentMatch(names[i], calibrate(float(best[i])), float(best[i]), int(best_units[i]))
        for i in np.argsort(-best)
        if best[i] >= threshold and best[i] >= top - margin
    ]
    return matches[:max_intents]


def intent_units(units: list[TextUnit]) -> list[int]:
    """Indices of the units intents are read from: the customer's, of at least MIN_WORDS words."""
    return [i for i, u in enumerate(units) if u.role == Role.CUSTOMER and u.words >= MIN_WORDS]
