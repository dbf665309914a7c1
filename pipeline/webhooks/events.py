"""Event types and their thin payloads: what happened, to which ids, and where to read the rest.

Payloads carry links, never results: a receiver fetches the result with its API key, so a leaked
or replayed webhook reveals nothing about the call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.db.models import Job, utcnow
from pipeline.ids import new_id

SCHEMA_VERSION = "2026-11-21"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
BATCH_COMPLETED = "batch.completed"
ENDPOINT_DISABLED = "endpoint.disabled"
WEBHOOK_TEST = "webhook.test"
# What an endpoint may subscribe to (an empty filter means all of them). `webhook.test` pings are
# sent to the endpoint they test whatever its filter.
SUBSCRIBABLE = (JOB_COMPLETED, JOB_FAILED, BATCH_COMPLETED, ENDPOINT_DISABLED)


def envelope(
    event_type: str, data: dict[str, Any], *, at: datetime | None = None
) -> dict[str, Any]:
    """The common shape: `{type, id, created_at, schema_version, data}`; `id` identifies the event."""
    return {
        "type": event_type,
        "id": new_id("evt"),
        "created_at": (at or utcnow()).isoformat().replace("+00:00", "Z"),
        "schema_version": SCHEMA_VERSION,
        "data": data,
    }


def job_links(job_id: str, *, base_url: str | None) -> dict[str, str]:
    base = (base_url or "").rstrip("/")
    return {"status": f"{base}/v1/jobs/{job_id}", "result": f"{base}/v1/jobs/{job_id}/result"}


def job_event(event_type: str, job: Job, *, base_url: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": job.id,
        "external_id": job.external_id,
        "status": job.status,
        "links": job_links(job.id, base_url=base_url),
    }
    if job.error_code:
        data["error"] = {"stage": job.error_stage, "code": job.error_code}
    return envelope(event_type, data)


def batch_event(summary: dict[str, Any], *, base_url: str | None) -> dict[str, Any]:
    """`batch.completed`: the batch finished (or its cancellation did), with its counts."""
    base = (base_url or "").rstrip("/")
    batch_id = summary["batch_id"]
    links = {
        "status": f"{base}/v1/batches/{batch_id}",
        "results": f"{base}/v1/batches/{batch_id}/results",
    }
    return envelope(BATCH_COMPLETED, {**summary, "links": links})


def endpoint_disabled_event(
    endpoint_id: str, *, url: str, reason: str, at: datetime
) -> dict[str, Any]:
    data = {"endpoint_id": endpoint_id, "url": url, "reason": reason}
    return envelope(ENDPOINT_DISABLED, data, at=at)


def ping_event(endpoint_id: str) -> dict[str, Any]:
    return envelope(WEBHOOK_TEST, {"endpoint_id": endpoint_id, "message": "a test ping"})
