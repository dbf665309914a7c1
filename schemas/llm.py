"""What an LLM analyzer is asked to return, per transcript chunk (the structured-output schema).

Kept simple on purpose: no defaults, no unions, no optional fields, so every provider's schema
dialect accepts it. Citations are plain (utterance_id, quote) pairs; the pipeline checks them.
"""

from __future__ import annotations

from pydantic import field_validator

from schemas.common import Message

ANSWERS = ("yes", "no", "na")


class LlmIntent(Message):
    name: str
    confidence: float


class LlmFinding(Message):
    """A violation or risk factor with the utterance that shows it and an exact quote from it."""

    code: str
    description: str
    severity: str
    utterance_id: str
    quote: str


class LlmAnswer(Message):
    """The answer to one semantic question: "yes", "no" or "na" (not applicable / no evidence)."""

    id: str
    answer: str
    rationale: str
    utterance_id: str
    quote: str

    @field_validator("answer")
    @classmethod
    def _known_answer(cls, value: str) -> str:
        # A free-form answer ("probably") is invalid output: the analyzer asks again.
        answer = value.strip().lower()
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {', '.join(ANSWERS)}")
        return answer


class LlmAnalysis(Message):
    summary: str
    intents: list[LlmIntent]
    topics: list[str]
    action_items: list[str]
    outcome: str
    violations: list[LlmFinding]
    risk_factors: list[LlmFinding]
    answers: list[LlmAnswer]
