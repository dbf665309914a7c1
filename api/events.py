"""`GET /v1/jobs/{id}/events`: a Server-Sent Events stream of a job's progress until it is terminal.

The stream polls the database with a fresh short session per poll (no connection is held between
polls), sends `event: stage` whenever the job moved and `event: completed` or `failed` at the end,
a comment line as a heartbeat while idle, and closes after `events_max_lifetime_s` (the client then
reconnects). An event's id is the job's `updated_at` in microseconds: a reconnect with
`Last-Event-ID` resumes at the first state the client has not seen. Polling may merge transitions
that happen within one interval: events are snapshots, not a log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, request, stream_with_context
from sqlalchemy.exc import SQLAlchemyError

from api.auth import require_caller
from api.jobs import JOB_ID
from api.presenters import job_view
from api.problems import ApiProblem
from api.state import AppState, state
from pipeline.db import jobs as job_repo
from pipeline.db.models import Job
from schemas.api import JobView
from schemas.events import JobProgress

log = logging.getLogger(__name__)
bp = Blueprint("events", __name__, url_prefix="/v1/jobs")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Snapshot:
    view: JobView

    @property
    def event_id(self) -> str:
        return str((self.view.updated_at - EPOCH) // timedelta(microseconds=1))

    @property
    def terminal(self) -> bool:
        return self.view.status.terminal


@bp.get("/<job_id>/events")
def job_events(job_id: str) -> Response:
    caller, app = require_caller(), state()
    first = _snapshot(app, caller.tenant_id, job_id)
    if first is None:
        raise ApiProblem(404, "not_found", "no such job")  # the same body as every other 404
    seen = request.headers.get("Last-Event-ID")
    if first.terminal and first.event_id == seen:
        return Response(status=204)  # it has the final event; 204 stops EventSource reconnecting
    slots = _stream_slots(app.settings.events_max_streams)
    if not slots.acquire(blocking=False):
        detail = "too many event streams are open; poll the job or retry shortly"
        raise ApiProblem(503, "service_unavailable", detail, headers={"Retry-After": "5"})
    stream = _stream(app, caller.tenant_id, first, seen=seen)
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.call_on_close(slots.release)  # the server closes every response it started
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy must pass events on as they come
    return response


def _stream_slots(size: int) -> threading.BoundedSemaphore:
    """Streams this process may hold at once: each holds a server thread, and requests need some."""
    slots: threading.BoundedSemaphore = current_app.extensions.setdefault(
        "callintel_event_streams", threading.BoundedSemaphore(size)
    )
    return slots


def _stream(app: AppState, tenant_id: str, first: Snapshot, *, seen: str | None) -> Iterator[str]:
    settings = app.settings
    yield f"retry: {settings.poll_after_s * 1000}\n\n"
    deadline = time.monotonic() + settings.events_max_lifetime_s
    quiet_since = time.monotonic()
    current: Snapshot | None = first
    while current is not None:
        if current.event_id != seen:
            yield _event(current)
            seen, quiet_since = current.event_id, time.monotonic()
        now = time.monotonic()
        if current.terminal or now >= deadline:
            return
        if now - quiet_since >= settings.events_heartbeat_s:
            yield ": heartbeat\n\n"
            quiet_since = now
        time.sleep(min(settings.events_poll_s, deadline - now))
        try:
            current = _snapshot(app, tenant_id, first.view.id)
        except SQLAlchemyError:
            log.warning("event stream ended: database unavailable", exc_info=True)
            return  # the client reconnects after `retry`


def _snapshot(app: AppState, tenant_id: str, job_id: str) -> Snapshot | None:
    """The job as its owner sees it, from a session closed before returning; None if not theirs."""
    if not JOB_ID.fullmatch(job_id):
        return None
    with app.sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.tenant_id != tenant_id:
            return None
        return Snapshot(job_view(job, job_repo.steps_of(session, job.id)))


def _event(snapshot: Snapshot) -> str:
    view = snapshot.view
    if snapshot.terminal:
        name, data = view.status.value, view.model_dump_json()
    else:
        progress = JobProgress(
            id=view.id,
            status=view.status,
            stage=view.stage,
            progress=view.progress,
            updated_at=view.updated_at,
        )
        name, data = "stage", progress.model_dump_json()
    return f"id: {snapshot.event_id}\nevent: {name}\ndata: {data}\n\n"
