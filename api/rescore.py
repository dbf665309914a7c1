"""Re-scoring: `POST /v1/jobs/{id}/rescore`, bulk `POST /v1/rescore`, and `GET /v1/rescores…`.

A rescore re-runs score (optionally analyze) from stored artifacts with the tenant's current
configuration; no transcription is repeated. The work runs on a worker; these views only queue it:
rescores wait in the database and are released fairly, up to the caps (docs/fairness.md).
"""

from __future__ import annotations

import math
from typing import TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from api.auth import require_caller
from api.idempotency import idempotent
from api.intake import strict_json
from api.jobs import JOB_ID
from api.problems import ApiProblem, validation_problem
from api.rate_limits import rate_limited
from api.responses import json_response
from api.state import state
from pipeline.db import rescore_backlog, rescores
from pipeline.db.models import Job, utcnow
from pipeline.db.rescore_models import WAITING, Rescore
from pipeline.db.session import transaction
from pipeline.ids import new_id
from schemas.common import JobStatus
from schemas.rescore import (
    BulkRescoreIn,
    ItemChange,
    RescoreBatchView,
    RescoreIn,
    RescoreList,
    RescoreView,
    ScoreSummary,
)
from workers.outbox import publish_after_commit

M = TypeVar("M", bound=BaseModel)
bp = Blueprint("rescore", __name__, url_prefix="/v1")
BULK_UNIT = 100  # jobs a bulk rescore may select per unit of the `rescore` rate limit


def bulk_cost() -> int:
    """What a bulk rescore charges the `rescore` bucket: a unit per 100 jobs it may select (its
    `limit`, or fewer `job_ids`), rounded up. A body that does not parse costs 1 (it gets a 422)."""
    try:
        given = _body(BulkRescoreIn)
    except ApiProblem:
        return 1
    most = given.limit
    if given.filter.job_ids is not None:
        most = min(most, len(given.filter.job_ids))
    return max(1, math.ceil(most / BULK_UNIT))


@bp.post("/jobs/<job_id>/rescore")
@rate_limited("rescore")
@idempotent()
def rescore_job(job_id: str) -> Response:
    caller, app = require_caller(), state()
    given = _body(RescoreIn)
    with transaction(app.sessions) as session:
        job = session.get(Job, job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None or job.tenant_id != caller.tenant_id:
            raise ApiProblem(404, "not_found", "no such job")
        if job.status != JobStatus.COMPLETED.value:
            raise ApiProblem(
                409,
                "job_not_completed",
                f"only completed jobs can be re-scored; the job is {job.status}",
            )
        if job.input_purged_at is not None:
            detail = "retention purged the job's transcript and artifacts: it cannot be re-scored"
            raise ApiProblem(409, "input_purged", detail)
        row = rescores.create_rescore(session, job, reanalyze=given.reanalyze)
        view = rescore_view(row)
        released = rescore_backlog.release_tenant(
            session, app.settings, caller.tenant_id, now=utcnow()
        )
    publish_after_commit(app.sessions, released)
    response = json_response(view, status=202)
    response.headers["Location"] = view.links["self"]
    return response


@bp.post("/rescore")
@rate_limited("rescore", cost=bulk_cost)
@idempotent()
def rescore_bulk() -> Response:
    caller, app = require_caller(), state()
    given = _body(BulkRescoreIn)
    batch_id = new_id("rsb")
    with transaction(app.sessions) as session:
        selected = rescores.completed_jobs(
            session, caller.tenant_id, given.filter, limit=given.limit
        )
        rows = [
            rescores.create_rescore(session, job, reanalyze=given.reanalyze, batch_id=batch_id)
            for job in selected
        ]
        views = [rescore_view(row) for row in rows]
        # What the tenant's cap allows starts now; the rest waits for the scheduler's ticks.
        released = rescore_backlog.release_tenant(
            session, app.settings, caller.tenant_id, now=utcnow()
        )
    publish_after_commit(app.sessions, released)
    body = RescoreBatchView(
        batch_id=batch_id,
        count=len(views),
        rescores=views,
        links={"self": f"/v1/rescores?batch_id={batch_id}"},
    )
    return json_response(body, status=202)


@bp.get("/rescores/<rescore_id>")
def get_rescore(rescore_id: str) -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        row = rescores.get_rescore(session, caller.tenant_id, rescore_id)
        if row is None:
            raise ApiProblem(404, "not_found", "no such rescore")
        return json_response(rescore_view(row))


@bp.get("/rescores")
def list_rescores() -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        rows = rescores.list_rescores(
            session,
            caller.tenant_id,
            batch_id=request.args.get("batch_id"),
            job_id=request.args.get("job_id"),
            limit=1000,
        )
        return json_response(RescoreList(data=[rescore_view(r) for r in rows]))


def rescore_view(row: Rescore) -> RescoreView:
    return RescoreView(
        id=row.id,
        job_id=row.job_id,
        batch_id=row.batch_id,
        status="queued" if row.status == WAITING else row.status,  # waiting: queued, to a client
        reanalyze=row.reanalyze,
        config_version=row.config_version,
        old=ScoreSummary.model_validate(row.old_score) if row.old_score else None,
        new=ScoreSummary.model_validate(row.new_score) if row.new_score else None,
        changes=[ItemChange.model_validate(c) for c in row.changes["items"]]
        if row.changes is not None
        else None,
        error={"code": row.error_code, "message": row.error_message or ""}
        if row.error_code
        else None,
        created_at=row.created_at,
        completed_at=row.completed_at,
        links={
            "self": f"/v1/rescores/{row.id}",
            "job": f"/v1/jobs/{row.job_id}",
            "result": f"/v1/jobs/{row.job_id}/result",
        },
    )


def _body(model: type[M]) -> M:
    data = request.get_data()
    if not data:
        return model()
    if request.mimetype != "application/json":
        raise ApiProblem(415, "unsupported_media_type", "send the options as application/json")
    try:
        return model.model_validate(strict_json(data))
    except ValidationError as exc:
        raise validation_problem(exc) from exc
