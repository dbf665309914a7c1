"""The one base task that owns retry, acknowledgement and failure policy for every pipeline stage.

Transient errors retry with exponential backoff and jitter (short countdowns only: long waits are
scheduled from the database); a database outage retries without end, since it is nobody's fault
and nothing can be recorded meanwhile; permanent errors fail the job with their stable code and stop the
chain; anything unexpected fails the job as `internal_error` and is logged with its traceback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded

from pipeline import runner
from pipeline.errors import DatabaseUnavailable, PermanentError, TransientError
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from workers import outbox
from workers.backoff import backoff, outage_wait
from workers.context import worker_context

log = logging.getLogger(__name__)


class PipelineTask(Task[Any, Any]):
    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    max_retries = 5

    def run_stage(self, stage: Stage, envelope: JobEnvelope) -> None:
        """Run the stage, then publish its committed hand-off to the next one."""
        ctx = worker_context()
        try:
            advanced = runner.run_stage(stage, envelope, ctx, retries=self.request.retries or 0)
        except DatabaseUnavailable as exc:
            raise self._wait_for_database(stage, envelope, exc) from exc
        except (TransientError, SoftTimeLimitExceeded) as exc:
            raise self._retry_or_fail(stage, envelope, exc) from exc
        except PermanentError as exc:
            log.warning("stage failed", extra=_extra(envelope, stage, code=exc.code))
            runner.fail(ctx, envelope, stage, code=exc.code, message=exc.message)
            raise Ignore from exc
        except Exception:
            log.exception("stage crashed", extra=_extra(envelope, stage, code="internal_error"))
            message = "an internal error occurred; the operators have the details in the logs"
            runner.fail(ctx, envelope, stage, code="internal_error", message=message)
            raise
        if advanced is not None and advanced.handoff and advanced.message_id is not None:
            outbox.publish_handoff(ctx.sessions, advanced.message_id, advanced.handoff)

    def _wait_for_database(
        self, stage: Stage, envelope: JobEnvelope, exc: DatabaseUnavailable
    ) -> Exception:
        """The database is down: wait a little, then put the message back on its queue, without
        end. A retry would count against the job's retry budget and end after `max_retries`; a
        requeued message is the same delivery, so neither budget moves (an outage is nobody's
        fault, and nothing can be recorded meanwhile). If the broker fails too, the message stays
        unacknowledged and the reaper's deadline brings the job back."""
        log.warning(
            "database unavailable; the stage goes back to its queue",
            extra=_extra(envelope, stage, code=exc.code),
        )
        time.sleep(outage_wait())
        return Reject(exc, requeue=True)

    def _retry_or_fail(self, stage: Stage, envelope: JobEnvelope, exc: Exception) -> Exception:
        ctx = worker_context()
        code = getattr(exc, "code", "stage_timeout")
        if self.request.retries >= self.max_retries:
            message = getattr(exc, "message", "the stage kept timing out")
            runner.fail(ctx, envelope, stage, code=code, message=message)
            return Ignore()
        countdown = backoff(self.request.retries)
        runner.note_retry(ctx, envelope, stage, code=code, retry_in_s=countdown)
        log.info("stage will retry", extra=_extra(envelope, stage, code=code))
        retry: Exception = self.retry(exc=exc, countdown=countdown, throw=False)
        return retry


def _extra(envelope: JobEnvelope, stage: Stage, *, code: str) -> dict[str, Any]:
    return {"job_id": envelope.job_id, "stage": stage.value, "code": code}
