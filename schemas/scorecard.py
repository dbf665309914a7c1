"""Scorecards (the tenant's definition) and scores (what evaluating one on a call produced)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.analysis import Evidence
from schemas.common import Message, Role


class Criterion(Message):
    """How an item is evaluated. `type` picks the evaluator; the rest are its parameters.

    phrase: any of `phrases` (case-insensitive, word-bounded) said by `role`, optionally only within
            the first/last `within_ms` of the call; `negate` turns "must say" into "must not say".
    metric: `metric` (a dotted path into CallMetrics, e.g. "by_role.agent.talk_ratio") within
            [`min`, `max`].
    """

    type: Literal["phrase", "metric"]
    phrases: list[str] = Field(default_factory=list)
    role: Role | Literal["any"] = "any"
    window: Literal["all", "first", "last"] = "all"
    within_ms: int | None = None
    negate: bool = False
    metric: str | None = None
    min: float | None = None
    max: float | None = None


class ScorecardItem(Message):
    id: str
    label: str
    weight: float = 1.0
    criterion: Criterion
    na_when_no_agent: bool = True  # N/A (out of the denominator) when no agent speech was found
    compliance: bool = False
    auto_fail: bool = False


class ScorecardSection(Message):
    id: str
    label: str
    items: list[ScorecardItem]


class Scorecard(Message):
    id: str
    version: int
    name: str
    sections: list[ScorecardSection]
    bands: dict[str, float] = Field(default_factory=dict)  # band name → minimum normalized score


class ItemScore(Message):
    id: str
    label: str
    answer: Literal["yes", "no", "na"]
    points: float
    potential: float
    rationale: str
    evidence: list[Evidence] = Field(default_factory=list)
    compliance: bool = False
    auto_fail: bool = False


class SectionScore(Message):
    id: str
    label: str
    score: float
    potential: float
    normalized: float | None
    items: list[ItemScore]


class ScoreArtifact(Message):
    scorecard_id: str
    scorecard_version: int
    score: float
    potential: float
    normalized: float | None
    band: str | None = None
    auto_failed: bool = False
    compliance_score: float | None = None
    sections: list[SectionScore]
    details: dict[str, Any] = Field(default_factory=dict)
