"""The rescore task: thin, like the stage tasks; the work is `pipeline.rescore.run_rescore`."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError

from pipeline.errors import PermanentError, TransientError
from pipeline.rescore import fail_rescore, run_rescore
from workers.app import app
from workers.backoff import backoff
from workers.context import worker_context
from workers.workflow import RESCORE_PRIORITY, analyze_queue

log = logging.getLogger(__name__)


@app.task(
    bind=True,
    name="pipeline.rescore",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=5,
)
def rescore(self: Task[Any, Any], rescore_id: str) -> None:
    ctx = worker_context()
    try:
        run_rescore(ctx, rescore_id)
    except (TransientError, OperationalError, InterfaceError) as exc:
        if self.request.retries >= (self.max_retries or 0):
            fail_rescore(
                ctx, rescore_id, code="transient_error", message="kept failing; retry later"
            )
            return
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    except PermanentError as exc:
        log.warning("rescore failed", extra={"rescore_id": rescore_id, "code": exc.code})
        fail_rescore(ctx, rescore_id, code=exc.code, message=exc.message)


def send_rescore(rescore_id: str, *, analyzer: str | None) -> None:
    """Queue a rescore where its analysis would run (`analyzer`: None when not reanalyzing), at
    the lowest priority: any job's stage on the same queue is served first."""
    queue = analyze_queue(analyzer or "local")
    rescore.apply_async((rescore_id,), queue=queue, priority=RESCORE_PRIORITY)
