"""`/v1/batches`: a night's recordings as one object — create, add items, watch, close, export.

Items join a batch's backlog (the database); the scheduler releases them fairly. Status documents
are read from the batch's counters, so they cost the same for 50 items or 50,000.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from flask import Blueprint, Response, request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth import Caller, require_caller
from api.batch_items import add_items
from api.batch_presenters import STATUSES, batch_view
from api.batch_results import stream_results
from api.idempotency import idempotent
from api.intake import strict_json
from api.presenters import decode_cursor, encode_cursor_of
from api.problems import ApiProblem, validation_problem
from api.rate_limits import rate_limited
from api.responses import json_response
from api.state import AppState, state
from api.webhook_urls import check_callback_url
from pipeline.db import batches
from pipeline.db.batch_models import Batch
from pipeline.db.session import transaction
from schemas.batches import (
    BatchIn,
    BatchList,
)
from workers.outbox import publish_after_commit

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")


@bp.post("")
@rate_limited("batch")
@idempotent()
def create_batch() -> Response:
    caller, app = require_caller(), state()
    try:
        given = BatchIn.model_validate(strict_json(request.get_data()))
    except ValidationError as exc:
        raise validation_problem(exc) from exc
    if given.callback_url is not None:
        check_callback_url(app, caller, given.callback_url)
    if given.source is not None:
        _check_source(caller, given.source.storage_prefix)
    with transaction(app.sessions) as session:
        batch = batches.create_batch(
            session,
            caller.tenant_id,
            name=given.name,
            call_type=given.call_type,
            metadata=given.metadata,
            channel_map=given.channel_map,
            callback_url=given.callback_url,
            source=given.source.model_dump() if given.source else None,
        )
        message = batches.request_import(session, batch) if given.source else None
        view = batch_view(batch)
    if message is not None:
        publish_after_commit(app.sessions, message_ids=[message.id])
    response = json_response(view, status=201)
    response.headers["Location"] = view.links["self"]
    return response


@bp.get("")
def list_batches() -> Response:
    caller, app = require_caller(), state()
    limit = _limit()
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiProblem(400, "invalid_request", f"status must be one of {', '.join(STATUSES)}")
    cursor = request.args.get("cursor")
    with app.sessions() as session:
        rows = batches.list_batches(
            session,
            caller.tenant_id,
            limit=limit + 1,
            name=request.args.get("name") or None,
            status=status,
            before=decode_cursor(cursor) if cursor else None,
        )
        data = [batch_view(b) for b in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    cursor_out = encode_cursor_of(last.created_at, last.id) if last else None
    return json_response(BatchList(data=data, has_more=more, next_cursor=cursor_out))


@bp.get("/<batch_id>")
def get_batch(batch_id: str) -> Response:
    caller, app = require_caller(), state()
    with app.sessions() as session:
        return json_response(batch_view(_owned(session, caller, batch_id)))


@bp.post("/<batch_id>/items")
@rate_limited("submit")
def post_items(batch_id: str) -> Response:
    caller, app = require_caller(), state()
    if request.mimetype not in ("application/x-ndjson", "application/jsonl"):
        raise ApiProblem(
            415, "unsupported_media_type", "send items as application/x-ndjson, one per line"
        )
    with app.sessions() as session:
        _owned(session, caller, batch_id)  # 404 before reading a byte of the body
    # Lines are read from a 1 MiB buffer: werkzeug's stream alone reads a line in small pieces.
    body = io.BufferedReader(request.stream, buffer_size=1024 * 1024)  # type: ignore[type-var]
    result = add_items(app, caller, batch_id, body)
    return json_response(result)


@bp.post("/<batch_id>/close")
def close_batch(batch_id: str) -> Response:
    return _change(
        batch_id, lambda session, batch, app: batches.close(session, batch, settings=app.settings)
    )


@bp.post("/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    return _change(
        batch_id, lambda session, batch, app: batches.cancel(session, batch, settings=app.settings)
    )


@bp.post("/<batch_id>/retry-failed")
def retry_failed(batch_id: str) -> Response:
    return _change(
        batch_id,
        lambda session, batch, app: batches.retry_failed(session, batch, settings=app.settings),
    )


@bp.get("/<batch_id>/results")
def get_results(batch_id: str) -> Response:
    caller, app = require_caller(), state()
    fmt = _results_format()
    with app.sessions() as session:
        batch = _owned(session, caller, batch_id)
        name = batch.name
    return stream_results(app, caller.tenant_id, batch_id, fmt=fmt, name=name)


def _change(batch_id: str, change: Callable[[Session, Batch, AppState], object]) -> Response:
    """Apply a state change to the caller's batch under its row lock; 409 when it cannot."""
    caller, app = require_caller(), state()
    with transaction(app.sessions) as session:
        batch = _owned(session, caller, batch_id, lock=True)
        try:
            change(session, batch, app)
        except batches.BatchStateError as exc:
            raise ApiProblem(409, exc.code, exc.message) from exc
        view = batch_view(batch)
    return json_response(view)


def _owned(session: Session, caller: Caller, batch_id: str, *, lock: bool = False) -> Batch:
    batch = batches.owned(session, caller.tenant_id, batch_id, lock=lock)
    if batch is None:
        raise ApiProblem(404, "not_found", "no such batch")
    return batch


def _check_source(caller: Caller, prefix: str) -> None:
    """Only locations the tenant's configuration lists: never an arbitrary bucket."""
    allowed = caller.submitter.config.batches.import_prefixes
    if not any(prefix.startswith(a.rstrip("/") + "/") or prefix == a for a in allowed):
        raise ApiProblem(
            422,
            "import_prefix_not_allowed",
            "the tenant's configuration (batches.import_prefixes) does not list this location",
        )


def _results_format() -> str:
    fmt = request.args.get("format")
    if fmt is None:
        fmt = (
            "csv"
            if request.accept_mimetypes.best_match(["application/x-ndjson", "text/csv"])
            == "text/csv"
            else "jsonl"
        )
    if fmt not in ("jsonl", "csv"):
        raise ApiProblem(400, "invalid_request", "format must be jsonl or csv")
    return fmt


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 100:
        raise ApiProblem(400, "invalid_request", "limit must be an integer in [1, 100]")
    return int(raw)
