"""Yes/no answers to semantic questions by embedding similarity (pure: vectors in, answers out).

A question becomes probes: its verb phrase ("Did the agent offer further assistance?" → "offer
further assistance") plus canonical call-center lines for the concepts it names, because a probe
that sounds like speech matches speech far better than the question does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.analysis.units import TextUnit, evidence
from schemas.analysis import SemanticAnswer, SemanticQuestion
from schemas.common import Role

Vectors = npt.NDArray[np.float32]

# Measured on tests/support/analysis_labels.py (16 questions): "yes" questions' best units scored
# 0.30 to 1.0 (7 of 9 above 0.6), "no" questions' at most 0.40.
THRESHOLD = 0.45
CONFIDENT_DISTANCE = 0.3  # this far from the threshold counts as certain

_AUXILIARY = re.compile(
    r"^\s*(?:did|does|do|has|have|had|was|were|is|are|will|would|could|can)\s+"
    r"(?:the\s+)?(?:agent|customer|caller|representative|rep|advisor|speaker|anyone|someone)\s+",
    re.IGNORECASE,
)

# Concept → a line a speaker would say. Keys are searched in the question (case-insensitive).
PHRASEBOOK: tuple[tuple[str, str], ...] = (
    (r"greet|welcom", "Hello, thank you for calling, how can I help you today?"),
    (r"introduc|\bname\b", "Hi, this is Sarah speaking, my name is Sarah."),
    (
        r"verif|identit|authenticat|security",
        "Can I have your account number to verify your identity?",
    ),
    (r"apolog|empath|sorry", "I'm sorry to hear that, I understand how frustrating that is."),
    (
        r"further|anything else|additional (?:help|assistance)",
        "Is there anything else I can help you with today?",
    ),
    (r"\bthank", "Thank you for calling, have a great day."),
    (r"\bhold\b", "May I place you on hold for a moment?"),
    (r"survey", "Please stay on the line for a short satisfaction survey."),
    (r"recap|summari", "So to recap, here is what we did today."),
    (r"supervisor|manager|escalat", "I want to speak to your supervisor."),
    (r"cancel", "I want to cancel my service."),
    (r"call\s*back|callback", "We will call you back tomorrow."),
    (
        r"upsell|upgrade|\bsell|new plan",
        "Would you be interested in upgrading to our premium plan?",
    ),
    (r"legal|lawyer|\bsue\b|attorney", "I'm going to call my lawyer and sue you."),
    (r"credit|compensat|refund", "I've added a credit to your account."),
    (r"autopay|paperless", "Would you like to sign up for autopay and paperless billing?"),
    (r"appointment|technician|visit", "I'll book a technician to visit you."),
    (r"problem|issue|not working|fault", "I have a problem, it's not working."),
    (r"payment|\bpay\b", "I'll make a payment on Friday."),
)


def probes(question: str) -> list[str]:
    """The question's verb phrase first, then the phrasebook lines for the concepts it names."""
    phrase = _AUXILIARY.sub("", question.strip()).rstrip("?").strip() or question
    lines = [line for pattern, line in PHRASEBOOK if re.search(pattern, question, re.IGNORECASE)]
    return [phrase, *lines]


def candidates(units: Sequence[TextUnit], role: Role | str) -> list[int]:
    """Indices of the units a question about `role` is answered from ("any": every unit)."""
    return [i for i, u in enumerate(units) if role in ("any", u.role)]


def answer(
    question: SemanticQuestion,
    *,
    units: Sequence[TextUnit],
    unit_vectors: Vectors,
    probe_vectors: Vectors,
    threshold: float = THRESHOLD,
) -> SemanticAnswer:
    """ "yes" with the best unit as evidence when its similarity to any probe reaches `threshold`,
    "no" below it, "na" when the question's role never speaks. Rows must be unit-normalised."""
    indices = candidates(units, question.role)
    if not indices:
        return SemanticAnswer(
            id=question.id, answer="na", rationale=f"the {question.role} never speaks"
        )
    sims = (unit_vectors[indices] @ probe_vectors.T).max(axis=1)
    best = int(np.argmax(sims))
    similarity = float(sims[best])
    unit = units[indices[best]]
    confidence = round(0.5 + min(0.5, abs(similarity - threshold) / CONFIDENT_DISTANCE / 2), 3)
    if similarity >= threshold:
        rationale = f"closest {unit.role} line (similarity {similarity:.2f}) says so"
        return SemanticAnswer(
            id=question.id,
            answer="yes",
            rationale=rationale,
            confidence=confidence,
            evidence=[evidence(unit)],
        )
    rationale = f"no line is close enough (best similarity {similarity:.2f} < {threshold:.2f})"
    return SemanticAnswer(id=question.id, answer="no", rationale=rationale, confidence=confidence)
