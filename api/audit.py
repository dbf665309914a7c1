"""`GET /v1/audit-events`: the caller's deletions and purges, newest first, by keyset cursor."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.auth import require_caller
from api.presenters import decode_cursor, encode_cursor_of
from api.problems import ApiProblem
from api.responses import json_response
from api.state import state
from pipeline.db import audit
from pipeline.db.audit_models import INPUT_PURGED, JOB_DELETED, JOB_PURGED, AuditEvent
from schemas.api import AuditEventList, AuditEventView

bp = Blueprint("audit", __name__, url_prefix="/v1/audit-events")
ACTIONS = (JOB_DELETED, INPUT_PURGED, JOB_PURGED)


@bp.get("")
def list_events() -> Response:
    caller, app = require_caller(), state()
    query = audit.PageQuery(
        tenant_id=caller.tenant_id,
        limit=_limit(),
        after=decode_cursor(c) if (c := request.args.get("cursor")) else None,
        job_id=_text_arg("job_id"),
        action=_action(),
    )
    with app.sessions() as session:
        rows, more = audit.page(session, query)
        data = [_view(e) for e in rows]
    cursor = encode_cursor_of(rows[-1].at, rows[-1].id) if more else None
    return json_response(AuditEventList(data=data, has_more=more, next_cursor=cursor))


def _view(event: AuditEvent) -> AuditEventView:
    return AuditEventView(
        id=event.id,
        job_id=event.job_id,
        actor=event.actor,
        action=event.action,
        removed=event.removed,
        at=event.at,
    )


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 100:
        raise ApiProblem(400, "invalid_request", "limit must be an integer in [1, 100]")
    return int(raw)


def _text_arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is not None and ("\x00" in value or len(value) > 40):
        raise ApiProblem(400, "invalid_request", f"{name} is not valid")
    return value


def _action() -> str | None:
    action = request.args.get("action")
    if action is not None and action not in ACTIONS:
        raise ApiProblem(400, "invalid_request", f"action must be one of {', '.join(ACTIONS)}")
    return action
