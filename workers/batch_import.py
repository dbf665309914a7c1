"""The server-side import task: thin, like the others; the work is `pipeline.batch_import.run`."""

from __future__ import annotations

from typing import Any

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError

from pipeline import batch_import
from pipeline.errors import TransientError
from workers.app import app
from workers.backoff import backoff
from workers.context import worker_context

TASK = "batches.import"


@app.task(
    bind=True,
    name=TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=10,
)
def import_batch(self: Task[Any, Any], batch_id: str) -> None:
    """Import a minute's worth of pages, then hand the rest to a fresh task (never one long task)."""
    ctx = worker_context()
    try:
        more = batch_import.run(ctx.sessions, ctx.settings, ctx.blobs, batch_id)
    except (TransientError, OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    if more:
        send_import(batch_id)


def send_import(batch_id: str) -> None:
    import_batch.apply_async(args=(batch_id,), queue="default")
