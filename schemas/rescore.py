"""Re-scoring: requests to re-run score (and optionally analyze) on completed calls, and the reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, field_validator

from schemas.common import Message, Strict


class RescoreIn(Strict):
    reanalyze: StrictBool = (
        False  # also re-run the analyzer (new client context, semantic questions)
    )


class RescoreFilter(Strict):
    job_ids: list[str] | None = Field(default=None, max_length=1000)
    call_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @field_validator("created_after", "created_before", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # Documented as date-time text; pydantic alone would also take a number (Unix seconds).
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO 8601 date-time")
        return value


class BulkRescoreIn(Strict):
    filter: RescoreFilter = Field(default_factory=RescoreFilter)
    reanalyze: StrictBool = False  # JSON true/false only, as documented
    limit: int = Field(default=500, ge=1, le=1000)


class ScoreSummary(Message):
    scorecard: str  # "id@version"
    score: float
    potential: float
    normalized: float | None
    band: str | None = None
    auto_failed: bool = False
    compliance_score: float | None = None
    needs_review: bool = False


class ItemChange(Message):
    item_id: str
    label: str
    change: Literal["changed", "added", "removed"]
    old_answer: str | None = None
    new_answer: str | None = None
    old_points: float | None = None
    new_points: float | None = None


class RescoreView(Message):
    id: str
    job_id: str
    batch_id: str | None
    status: Literal["queued", "running", "completed", "failed"]
    reanalyze: bool
    config_version: int | None
    old: ScoreSummary | None
    new: ScoreSummary | None
    changes: list[ItemChange] | None
    error: dict[str, str] | None
    created_at: datetime
    completed_at: datetime | None
    links: dict[str, str]


class RescoreBatchView(Message):
    batch_id: str
    count: int
    rescores: list[RescoreView]
    links: dict[str, str]


class RescoreList(Message):
    data: list[RescoreView]
