"""Scorecards v2 (a tenant's versioned definition, strict) and scores (what evaluating one produced).

An item's points are `weight * points[answer]`; its potential is `weight * max(points)`. N/A (when
`na_allowed`) leaves the denominator; otherwise an unanswerable item takes its lowest answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.analysis import Evidence, Finding
from schemas.common import Message, Strict
from schemas.rules import Rule

Severity = Literal["low", "medium", "high", "critical"]
AutoFail = Literal["none", "section", "card"]
YES_NO_POINTS = {"yes": 1.0, "no": 0.0}


class Level(Strict):
    """One step of a scale/choice item: the rule's measured value within [min, max] → `answer`.

    Levels are tried in order; the first that contains the value wins; none → the lowest answer.
    """

    answer: str
    min: float | None = None
    max: float | None = None


class ScorecardItem(Strict):
    id: str = Field(min_length=1, max_length=80)
    label: str
    description: str = ""
    weight: float = Field(default=1.0, ge=0)
    answer_type: Literal["yes_no", "scale", "choice"] = "yes_no"
    points: dict[str, float] | None = None  # None: yes_no's {"yes": 1, "no": 0}
    levels: list[Level] = Field(default_factory=list)  # scale / choice only
    na_allowed: bool = True
    evaluator: Rule
    auto_fail: AutoFail = "none"
    severity: Severity = "medium"
    compliance: bool = False

    def answer_points(self) -> dict[str, float]:
        return self.points if self.points is not None else dict(YES_NO_POINTS)


class ScorecardSection(Strict):
    id: str = Field(min_length=1, max_length=80)
    label: str
    items: list[ScorecardItem] = Field(min_length=1)


class ReviewPolicy(Strict):
    """When a failing auto-fail item rests on evidence too uncertain to fail a call on its own."""

    role_confidence_min: float = Field(default=0.7, ge=0, le=1)
    asr_confidence_min: float = Field(default=0.5, ge=0, le=1)


class Scorecard(Strict):
    id: str = Field(min_length=1, max_length=120)
    version: int = Field(ge=0)
    name: str
    call_types: list[str] = Field(default_factory=list)  # empty: any call type
    sections: list[ScorecardSection] = Field(min_length=1)
    bands: dict[str, float] = Field(default_factory=dict)  # band name → minimum normalized score
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)


class ItemScore(Message):
    id: str
    label: str
    answer: str  # "yes" | "no" | a scale/choice answer | "na"
    points: float
    potential: float
    rationale: str
    evidence: list[Evidence] = Field(default_factory=list)
    severity: Severity = "medium"
    compliance: bool = False
    auto_fail: AutoFail = "none"
    failed: bool = False  # the lowest answer of an item (what auto-fail acts on)
    needs_review: bool = False
    review_reason: str | None = None  # why a failing auto-fail item did not fail the call


class SectionScore(Message):
    id: str
    label: str
    score: float
    potential: float
    normalized: float | None
    auto_failed: bool = False
    items: list[ItemScore]


class Risk(Message):
    score: int = Field(ge=0, le=100)
    factors: list[Finding] = Field(default_factory=list)


class ScoreArtifact(Message):
    scorecard_id: str
    scorecard_version: int
    score: float
    potential: float
    normalized: float | None
    band: str | None = None
    auto_failed: bool = False
    auto_failed_items: list[str] = Field(default_factory=list)
    compliance_score: float | None = None  # compliance items only: a breach is never averaged away
    needs_review: bool = False
    review_reasons: list[str] = Field(default_factory=list)
    risk: Risk = Field(default_factory=lambda: Risk(score=0))
    rules_version: str = ""
    config_version: int | None = None  # the tenant configuration whose card this is
    sections: list[SectionScore]
