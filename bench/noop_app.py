"""A bench-only Celery app: five no-op tasks chained like the pipeline, the last one counting in Redis.

Its configuration mirrors celeryconfig.py (same broker, acks_late, reject on worker lost, prefetch 1,
JSON only, results ignored, task events on, the same queue routes), so a worker running it measures
what Celery and Redis alone cost per chain. Broker: $REDIS_URL.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery, chain
from celery.canvas import Signature

COUNTER = "bench:noop:done"
QUEUES = "transcribe,asr-local,analyze,default,webhooks"

app = Celery("bench_noop")
app.conf.update(
    broker_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
    result_backend=None,
    task_ignore_result=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
    task_default_queue="default",
    task_routes={
        "bench.noop.transcribe": {"queue": "asr-local"},
        "bench.noop.diarize": {"queue": "default"},
        "bench.noop.analyze": {"queue": "analyze"},
        "bench.noop.score": {"queue": "default"},
        "bench.noop.persist": {"queue": "default"},
    },
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)

_redis: tuple[int, redis.Redis] | None = None


def _counter_client() -> redis.Redis:
    """One client per process (a forked pool child never reuses its parent's socket)."""
    global _redis  # noqa: PLW0603 - a per-process cache, keyed by pid
    if _redis is None or _redis[0] != os.getpid():
        _redis = (os.getpid(), redis.Redis.from_url(app.conf.broker_url))
    return _redis[1]


def _step(envelope: dict[str, Any], stage: str) -> dict[str, Any]:
    artifacts = {**envelope.get("artifacts", {}), stage: f"{envelope['job_id']}/{stage}.json"}
    return {**envelope, "artifacts": artifacts}


@app.task(name="bench.noop.transcribe")
def transcribe(envelope: dict[str, Any]) -> dict[str, Any]:
    return _step(envelope, "transcribe")


@app.task(name="bench.noop.diarize")
def diarize(envelope: dict[str, Any]) -> dict[str, Any]:
    return _step(envelope, "diarize")


@app.task(name="bench.noop.analyze")
def analyze(envelope: dict[str, Any]) -> dict[str, Any]:
    return _step(envelope, "analyze")


@app.task(name="bench.noop.score")
def score(envelope: dict[str, Any]) -> dict[str, Any]:
    return _step(envelope, "score")


@app.task(name="bench.noop.persist")
def persist(envelope: dict[str, Any]) -> dict[str, Any]:
    _counter_client().incr(COUNTER)
    return _step(envelope, "persist")


def build_chain(envelope: dict[str, Any]) -> Signature:
    return chain(transcribe.s(envelope), diarize.s(), analyze.s(), score.s(), persist.s())
