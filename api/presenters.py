"""Database rows → public documents (`JobView`), and the opaque list cursor."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from flask import url_for

from api.problems import ApiProblem
from pipeline.db.models import Job, JobStep
from schemas.api import InputView, JobError, JobView, StepView
from schemas.common import STAGES, JobStatus


def job_view(job: Job, steps: list[JobStep]) -> JobView:
    done = sum(1 for s in steps if s.state == "succeeded")
    error = None
    if job.error_code:
        error = JobError(
            stage=job.error_stage, code=job.error_code, message=job.error_message or ""
        )
    return JobView(
        id=job.id,
        status=JobStatus(job.status),
        stage=job.stage,
        progress=round(done / len(STAGES), 2),
        input_kind=job.input_kind,
        input=InputView(kind=job.input_kind, purged_at=job.input_purged_at),
        external_id=job.external_id,
        call_type=job.call_type,
        metadata=job.meta,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        error=error,
        steps=[_step(s) for s in steps],
        links={
            "self": url_for("jobs.get_job", job_id=job.id),
            "result": url_for("jobs.get_result", job_id=job.id),
        },
    )


def _step(step: JobStep) -> StepView:
    return StepView(
        stage=step.stage,
        state=step.state,
        attempts=step.attempts,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_ms=step.duration_ms,
        provider=step.provider,
    )


def encode_cursor(job: Job) -> str:
    return encode_cursor_of(job.created_at, job.id)


def encode_cursor_of(created_at: datetime, row_id: str) -> str:
    """An opaque keyset cursor: the (created_at, id) of the last row of a page."""
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        when = datetime.fromisoformat(created)
    except (ValueError, TypeError) as exc:
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid") from exc
    if (
        when.tzinfo is None
        or not isinstance(job_id, str)
        or not job_id.isascii()
        or "\x00" in job_id
    ):
        raise ApiProblem(400, "invalid_cursor", "the cursor is not valid")
    return when, job_id
