"""Every Prometheus metric of the project, and how a process exposes them (docs/operations.md).

With PROMETHEUS_MULTIPROC_DIR set (gunicorn workers, prefork children) each process writes its
values to files there and `exposition()` aggregates them all; without it, this process's registry.
Metric names and labels are a contract with dashboards and alerts: rename nothing lightly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector

from pipeline.errors import PipelineError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RATE_LIMITED = "provider_rate_limited"  # the code every adapter gives an HTTP 429

# Stages run from milliseconds (score) to many minutes (local speech on a long call).
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)

# --- the API -------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "callintel_http_requests_total",
    "API requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "callintel_http_request_duration_seconds",
    "API request latency, by route template and method.",
    ["route", "method"],
)

# --- workers -------------------------------------------------------------------------------

STAGE_DURATION = Histogram(
    "callintel_stage_duration_seconds",
    "One run of a stage; outcome: done, skipped (artifact existed), parked (provider still "
    "working), error (see callintel_stage_errors_total), gave_up (attempts cap).",
    ["stage", "outcome"],
    buckets=_STAGE_BUCKETS,
)
STAGE_ATTEMPTS = Counter(
    "callintel_stage_attempts_total",
    "Stage runs begun (redeliveries and retries included).",
    ["stage"],
)
STAGE_ERRORS = Counter(
    "callintel_stage_errors_total",
    "Errors a stage raised, by stable code; kind: transient (retried) or permanent.",
    ["stage", "code", "kind"],
)
JOB_FAILURES = Counter(
    "callintel_job_failures_total",
    "Jobs failed, by the stage they failed at and their stable error code.",
    ["stage", "code"],
)
WEBHOOK_DELIVERIES = Counter(
    "callintel_webhook_attempts_total",
    "Webhook delivery attempts, by the delivery's state after the attempt.",
    ["state"],
)
PROVIDER_LATENCY = Histogram(
    "callintel_provider_request_duration_seconds",
    "One call to a cloud provider, by provider and operation; outcome: ok or an error code.",
    ["provider", "operation", "outcome"],
)
PROVIDER_RATE_LIMITED = Counter(
    "callintel_provider_rate_limited_total",
    "HTTP 429 answers from a cloud provider.",
    ["provider"],
)

# --- gauges sampled by beat (pipeline/gauges.py); the most recent sample wins --------------

JOBS_BY_STATUS = Gauge(
    "callintel_jobs", "Jobs by status.", ["status"], multiprocess_mode="mostrecent"
)
BACKLOG = Gauge(
    "callintel_backlog_items",
    "Batch items not released yet, per tenant.",
    ["tenant_id"],
    multiprocess_mode="mostrecent",
)
OUTBOX_UNPUBLISHED = Gauge(
    "callintel_outbox_unpublished",
    "Outbox rows not published yet.",
    multiprocess_mode="mostrecent",
)
OVERDUE_JOBS = Gauge(
    "callintel_jobs_overdue",
    "Unfinished jobs whose next action is overdue (the reaper re-drives them).",
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "callintel_queue_depth",
    "Messages waiting in a broker queue.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
GAUGES_SAMPLED = Gauge(
    "callintel_gauges_sampled_timestamp_seconds",
    "When the gauges above were last sampled (stale gauges mean beat or its worker is down).",
    multiprocess_mode="mostrecent",
)


@contextmanager
def provider_call(provider: str, operation: str) -> Iterator[None]:
    """Time one provider call. Wrap the call *and* its error translation: a PipelineError leaving
    the block is counted by its code (a 429 as `provider_rate_limited`)."""
    began = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except PipelineError as exc:
        outcome = exc.code
        if exc.code == RATE_LIMITED:
            PROVIDER_RATE_LIMITED.labels(provider).inc()
        raise
    finally:
        elapsed = time.perf_counter() - began
        PROVIDER_LATENCY.labels(provider, operation, outcome).observe(elapsed)


def registry() -> CollectorRegistry:
    """What this process should expose: every process's values in multiprocess mode, else its own."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    aggregated = CollectorRegistry()
    MultiProcessCollector(aggregated)  # type: ignore[no-untyped-call]
    return aggregated


def exposition() -> tuple[bytes, str]:
    """The text exposition format of `registry()`, and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from other hosts
    """Serve `registry()` on `port` from a daemon thread of this process (a worker's main one)."""
    start_http_server(port, addr=addr, registry=registry())
