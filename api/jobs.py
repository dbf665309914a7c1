"""`/v1/jobs`: submit a recording or transcript, poll its status, read its result, list jobs, delete
a finished job."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from api.auth import Caller, require_caller
from api.dedupe import DUPLICATE_OF, DuplicateJob
from api.etags import conditional
from api.idempotency import idempotent
from api.intake import accept_audio, accept_transcript, strict_json
from api.presenters import decode_cursor, encode_cursor, job_view
from api.problems import ApiProblem, too_large
from api.rate_limits import rate_limited
from api.responses import json_response
from api.state import AppState, state
from api.upload_digest import read_job_upload
from api.uploads import UPLOAD, MalformedUpload, MultipartReader, UploadTooLarge
from pipeline import retention
from pipeline.db import jobs as job_repo
from pipeline.db.models import Job, JobResult
from pipeline.db.session import transaction
from schemas.api import JobList, JobView
from schemas.common import JobStatus
from workers.outbox import publish_after_commit

JOB_ID = re.compile(r"job_[0-9a-z]{26}")
bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
MULTIPART_SLACK = 64 * 1024  # form fields and part headers around the file


@bp.post("")
@rate_limited("submit")
@idempotent(read_upload=read_job_upload)
def create_job() -> Response:
    caller, app = require_caller(), state()
    try:
        job = _accept(app, caller)
    except DuplicateJob as duplicate:
        return _duplicate(app, caller, duplicate.job_id)
    publish_after_commit(app.sessions, [job.id])
    view = _load_view(app, caller, job.id)
    response = json_response(view, status=202)
    response.headers["Location"] = view.links["self"]
    return response


def _accept(app: AppState, caller: Caller) -> Job:
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        limit = app.settings.max_upload_bytes
        if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
            raise too_large(UPLOAD, limit)
        boundary = request.mimetype_params.get("boundary", "")
        if not boundary:
            raise ApiProblem(400, "invalid_request", "multipart body without a boundary")
        reader = MultipartReader(
            request.stream, boundary.encode(), max_field_bytes=app.settings.max_form_field_bytes
        )
        try:
            return accept_audio(app, caller, reader)
        except UploadTooLarge as exc:
            raise too_large(exc.what, exc.limit) from exc
        except MalformedUpload as exc:
            raise ApiProblem(400, "invalid_request", str(exc)) from exc
    if mimetype == "application/json":
        return accept_transcript(app, caller, strict_json(request.get_data()))
    raise ApiProblem(
        415,
        "unsupported_media_type",
        "send audio as multipart/form-data or a transcript as application/json",
    )


def _duplicate(app: AppState, caller: Caller, job_id: str) -> Response:
    """200 with the existing job (tenant option `dedupe`): nothing new was created."""
    view = _load_view(app, caller, job_id)
    response = json_response(view)
    response.headers["Location"] = view.links["self"]
    response.headers[DUPLICATE_OF] = view.id
    return response


@bp.get("/<job_id>")
def get_job(job_id: str) -> Response:
    caller, app = require_caller(), state()
    view = _load_view(app, caller, job_id)
    response = conditional(json_response(view))  # ETag; 304 when If-None-Match matches
    if not view.status.terminal:
        response.headers["Retry-After"] = str(app.settings.poll_after_s)
    return response


@bp.get("/<job_id>/result")
def get_result(job_id: str) -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        job = _owned(_fetch(session, job_id), caller)
        result = session.get(JobResult, job_id)
        if job.status == JobStatus.FAILED.value:
            raise ApiProblem(409, "job_failed", f"the job failed ({job.error_code})")
        if result is None:
            detail = f"the job is {job.status}; poll its status until it is completed"
            headers = {"Retry-After": str(app.settings.poll_after_s)}
            raise ApiProblem(409, "result_not_ready", detail, headers=headers)
        return jsonify(result.body)


@bp.delete("/<job_id>")
@idempotent()
def delete_job(job_id: str) -> Response:
    """Remove a finished job and everything stored for it (pipeline/retention.py), audited."""
    caller, app = require_caller(), state()
    actor = caller.api_key_id or "api"
    with transaction(app.sessions) as session:
        job = _owned(_fetch(session, job_id, lock=True), caller)
        try:
            retention.delete_job(session, app.blobs, job, actor=actor)
        except retention.JobInProgress as exc:
            detail = "the job is still being processed; delete it once it has finished"
            headers = {"Retry-After": str(app.settings.poll_after_s)}
            raise ApiProblem(409, "job_in_progress", detail, headers=headers) from exc
    return Response(status=204)


@bp.get("")
def list_jobs() -> Response:
    caller, app = require_caller(), state()
    limit = _int_arg("limit", default=20, low=1, high=100)
    query = _filtered(select(Job).where(Job.tenant_id == caller.tenant_id))
    with app.sessions() as session:
        rows = list(session.scalars(query.limit(limit + 1)))
        page = rows[:limit]
        steps = job_repo.steps_by_job(session, [j.id for j in page])
        data = [job_view(j, steps[j.id]) for j in page]
    more = len(rows) > limit
    body = JobList(data=data, has_more=more, next_cursor=encode_cursor(page[-1]) if more else None)
    return json_response(body)


def _filtered(query: Select[Job]) -> Select[Job]:
    args = request.args
    if status := args.get("status"):
        if status not in {s.value for s in JobStatus}:
            raise ApiProblem(400, "invalid_request", f"unknown status {status!r}")
        query = query.where(Job.status == status)
    if batch_id := args.get("batch_id"):
        query = query.where(Job.batch_id == batch_id)
    if external_id := args.get("external_id"):
        if "\x00" in external_id:
            raise ApiProblem(400, "invalid_request", "external_id must not contain NUL")
        query = query.where(Job.external_id == external_id)
    if created_gte := args.get("created_gte"):
        query = query.where(Job.created_at >= _time_arg("created_gte", created_gte))
    if created_lt := args.get("created_lt"):
        query = query.where(Job.created_at < _time_arg("created_lt", created_lt))
    if cursor := args.get("cursor"):
        created_at, job_id = decode_cursor(cursor)
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    return query.order_by(Job.created_at.desc(), Job.id.desc())


def _load_view(app: AppState, caller: Caller, job_id: str) -> JobView:
    with app.sessions() as session:
        job = _owned(_fetch(session, job_id), caller)
        return job_view(job, job_repo.steps_of(session, job.id))


def _fetch(session: Session, job_id: str, *, lock: bool = False) -> Job | None:
    """The job (row-locked with `lock`), or None; an id that cannot be one of ours is not even
    looked up."""
    if not JOB_ID.fullmatch(job_id):
        return None
    return job_repo.lock_job(session, job_id) if lock else session.get(Job, job_id)


def _owned(job: Job | None, caller: Caller) -> Job:
    """Another tenant's job is indistinguishable from one that does not exist."""
    if job is None or job.tenant_id != caller.tenant_id:
        raise ApiProblem(404, "not_found", "no such job")
    return job


def _int_arg(name: str, *, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal()) or not low <= int(raw) <= high:
        raise ApiProblem(400, "invalid_request", f"{name} must be an integer in [{low}, {high}]")
    return int(raw)


def _time_arg(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiProblem(400, "invalid_request", f"{name} must be an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise ApiProblem(400, "invalid_request", f"{name} must include a UTC offset")
    return value
