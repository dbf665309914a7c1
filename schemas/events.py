"""Server-Sent Events of a job (`GET /v1/jobs/{id}/events`): the data of an `event: stage`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.common import JobStatus


class JobProgress(BaseModel):
    """A job's position in the pipeline; the final `completed`/`failed` events carry a JobView."""

    id: str
    status: JobStatus
    stage: str | None
    progress: float = Field(description="Share of stages finished, 0 … 1")
    updated_at: datetime
