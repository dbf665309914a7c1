"""The one base task that owns retry, acknowledgement and failure policy for every pipeline stage.

Transient errors retry with exponential backoff and jitter (short countdowns only: long waits are
scheduled from the database); permanent errors fail the job with their stable code and stop the
chain; anything unexpected fails the job as `internal_error` and is logged with its traceback.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from pipeline import runner
from pipeline.errors import PermanentError, TransientError
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from workers.context import worker_context

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 120


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 … s, capped well under the visibility timeout."""
    cap: float = min(MAX_BACKOFF_S, 2 ** (retries + 1))
    return random.uniform(0.5, 1.0) * cap  # noqa: S311 - jitter, not cryptography


class PipelineTask(Task[Any, Any]):
    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    max_retries = 5

    def run_stage(self, stage: Stage, envelope: JobEnvelope) -> JobEnvelope:
        ctx = worker_context()
        try:
            result = runner.run_stage(stage, envelope, ctx, retries=self.request.retries or 0)
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
        if result is None:  # terminal, or gave up: the rest of the chain must not run
            raise Ignore
        return result

    def _retry_or_fail(self, stage: Stage, envelope: JobEnvelope, exc: Exception) -> Exception:
        ctx = worker_context()
        code = getattr(exc, "code", "stage_timeout")
        if self.request.retries >= self.max_retries:
            message = getattr(exc, "message", "the stage kept timing out")
            runner.fail(ctx, envelope, stage, code=code, message=message)
            return Ignore()
        runner.note_retry(ctx, envelope, stage, code=code)
        log.info("stage will retry", extra=_extra(envelope, stage, code=code))
        retry: Exception = self.retry(exc=exc, countdown=backoff(self.request.retries), throw=False)
        return retry


def _extra(envelope: JobEnvelope, stage: Stage, *, code: str) -> dict[str, Any]:
    return {"job_id": envelope.job_id, "stage": stage.value, "code": code}
