"""Event payloads are thin: type, ids, status, links and a timestamp, never results."""

from __future__ import annotations

from datetime import datetime

from pipeline.db.models import Job
from pipeline.webhooks import events


def job(**fields: object) -> Job:
    values = {"id": "job_01", "tenant_id": "ten_1", "status": "completed", "external_id": "crm-7"}
    return Job(**{**values, **fields})


def test_job_completed_payload_shape() -> None:
    payload = events.job_event(events.JOB_COMPLETED, job(), base_url=None)
    assert list(payload) == ["type", "id", "created_at", "schema_version", "data"]
    assert payload["type"] == "job.completed"
    assert payload["id"].startswith("evt_")
    assert payload["schema_version"] == events.SCHEMA_VERSION
    assert datetime.fromisoformat(payload["created_at"]).tzinfo is not None
    assert payload["created_at"].endswith("Z")
    assert payload["data"] == {
        "job_id": "job_01",
        "external_id": "crm-7",
        "status": "completed",
        "links": {"status": "/v1/jobs/job_01", "result": "/v1/jobs/job_01/result"},
    }


def test_links_are_absolute_with_a_public_base_url_and_failures_carry_their_code() -> None:
    failed = job(status="failed", error_stage="transcribe", error_code="invalid_audio")
    payload = events.job_event(events.JOB_FAILED, failed, base_url="https://api.example/")
    assert payload["data"]["links"]["result"] == "https://api.example/v1/jobs/job_01/result"
    assert payload["data"]["error"] == {"stage": "transcribe", "code": "invalid_audio"}
    assert "message" not in payload["data"]["error"]  # messages may quote input: not in webhooks


def test_every_event_has_its_own_id() -> None:
    ids = {events.ping_event("whe_1")["id"] for _ in range(20)}
    assert len(ids) == 20
