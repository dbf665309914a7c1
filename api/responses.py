"""Small pieces every view shares: a pydantic model as a JSON response, and publishing what a
committed transaction put in the outbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from workers.outbox import relay

log = logging.getLogger(__name__)


def json_response(model: BaseModel, *, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def publish_after_commit(
    sessions: sessionmaker[Session],
    job_ids: Sequence[str] = (),
    *,
    message_ids: Sequence[int] = (),
) -> None:
    """Publish the outbox rows of these jobs (or these rows) now; if the broker is down the beat
    sweep publishes them later."""
    try:
        if job_ids:
            relay(sessions, job_ids=job_ids)
        if message_ids:
            relay(sessions, message_ids=message_ids)
    except Exception:
        log.warning("publish deferred to the outbox sweep", exc_info=True)
