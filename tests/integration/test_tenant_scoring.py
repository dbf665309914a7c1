"""Each tenant scores calls by its own rules: two tenants with different packs score the same call
differently, and a tenant that changes its configuration re-scores a completed call (no new
transcription) and sees what changed per item. Real worker, PostgreSQL, Redis and S3 (moto)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import JobStep
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from pipeline.settings import Settings
from schemas.tenant import TenantConfig
from tests.conftest import TenantKey, make_tenant
from tests.integration.conftest import Poll
from workers.maintenance import release_rescores

pytestmark = pytest.mark.integration

COLLECTIONS_CALL = [
    {"speaker": "Agent", "text": "Hello, this is John from Delta Recovery. Am I speaking with Maria Lopez?"},
    {"speaker": "Customer", "text": "Yes, this is Maria."},
    {"speaker": "Agent", "text": "This is an attempt to collect a debt and any information obtained will be used for that purpose."},
    {"speaker": "Agent", "text": "I'm calling about your balance of 640 dollars with Metro Card, which is past due."},
    {"speaker": "Customer", "text": "I don't owe that, I paid it off last year."},
    {"speaker": "Agent", "text": "You have the right to dispute it. I'll send you a validation notice with the details."},
    {"speaker": "Customer", "text": "If it turns out I owe it, I will pay it next month."},
    {"speaker": "Agent", "text": "Thank you Maria, is there anything else I can help you with? Have a good day."},
]  # fmt: skip


def configure(sessions: sessionmaker[Session], tenant: TenantKey, config: dict[str, Any]) -> None:
    """A new version of the tenant's configuration, as the admin API and CLI store it."""
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, TenantConfig.model_validate(config), author="test")


def completed_result(
    client: FlaskClient,
    poll: Poll,
    tenant: TenantKey,
    turns: list[dict[str, str]],
    **fields: Any,
) -> tuple[str, dict[str, Any]]:
    body = {"transcript": turns, **fields}
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.json
    job_id: str = response.json["id"]  # type: ignore[index]
    assert poll(job_id, tenant.headers)["status"] == "completed"
    result: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/result", headers=tenant.headers).json  # type: ignore[assignment]
    return job_id, result


def items(score: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for s in score["sections"] for i in s["items"]}


def wait_rescore(client: FlaskClient, tenant: TenantKey, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url, headers=tenant.headers).json  # type: ignore[assignment]
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"rescore {url} did not finish")


def test_two_tenants_with_different_packs_score_the_same_call_differently(
    worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    service, collections = make_tenant(sessions, "svc"), make_tenant(sessions, "coll")
    configure(sessions, service, {"packs": ["customer_service"]})
    configure(sessions, collections, {"packs": ["debt_collection"]})
    _, a = completed_result(client, poll, service, COLLECTIONS_CALL)
    _, b = completed_result(client, poll, collections, COLLECTIONS_CALL)
    assert a["score"]["scorecard_id"] != b["score"]["scorecard_id"]
    a_items, b_items = items(a["score"]), items(b["score"])
    assert not set(a_items) & set(b_items)
    miranda = b_items["mini_miranda"]
    assert miranda["answer"] == "yes"
    assert miranda["evidence"] and "attempt to collect a debt" in miranda["evidence"][0]["quote"]
    assert b["score"]["compliance_score"] is not None
    greeting = a_items["greeting"]
    assert greeting["evidence"], greeting


def test_a_changed_scorecard_rescores_a_completed_call_without_transcribing_again(
    worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    tenant, stranger = make_tenant(sessions, "rescorer"), make_tenant(sessions, "stranger")
    configure(sessions, tenant, {"packs": ["customer_service"]})
    job_id, before = completed_result(client, poll, tenant, COLLECTIONS_CALL)
    with sessions() as session:
        step = session.get(JobStep, (job_id, "transcribe"))
        assert step is not None
        transcribed_at = step.finished_at
    configure(sessions, tenant, {"packs": ["customer_service", "debt_collection"]})
    # Another tenant cannot re-score (or even see) this job.
    assert client.post(f"/v1/jobs/{job_id}/rescore", headers=stranger.headers).status_code == 404
    response = client.post(f"/v1/jobs/{job_id}/rescore", json={}, headers=tenant.headers)
    assert response.status_code == 202, response.json
    done = wait_rescore(client, tenant, response.headers["Location"])
    assert done["status"] == "completed", done
    assert done["old"]["scorecard"] != done["new"]["scorecard"]
    assert done["config_version"] == 2  # the version that re-scored it
    added = {c["item_id"] for c in done["changes"] if c["change"] == "added"}
    assert any("mini_miranda" in item for item in added), done["changes"]
    after: dict[str, Any] = client.get(f"/v1/jobs/{job_id}/result", headers=tenant.headers).json  # type: ignore[assignment]
    assert after["score"]["scorecard_id"] != before["score"]["scorecard_id"]
    assert after["transcript"] == before["transcript"]
    with sessions() as session:
        step = session.get(JobStep, (job_id, "transcribe"))
        assert step is not None and step.finished_at == transcribed_at  # not transcribed again
    assert client.get(response.headers["Location"], headers=stranger.headers).status_code == 404


def test_a_bulk_rescore_selects_the_tenants_completed_calls(
    worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    tenant = make_tenant(sessions, "bulk")
    ids = [completed_result(client, poll, tenant, COLLECTIONS_CALL)[0] for _ in range(2)]
    configure(sessions, tenant, {"packs": ["debt_collection"]})
    response = client.post("/v1/rescore", json={"filter": {"job_ids": ids}}, headers=tenant.headers)
    assert response.status_code == 202, response.json
    batch: dict[str, Any] = response.json  # type: ignore[assignment]
    assert batch["count"] == 2
    for view in batch["rescores"]:
        # This module's worker runs no beat: the test releases what waits behind the tenant's cap
        # (docs/fairness.md), as beat's scheduler tick would.
        release_rescores(sessions, settings)
        assert wait_rescore(client, tenant, view["links"]["self"])["status"] == "completed"
    listed = client.get(batch["links"]["self"], headers=tenant.headers).json
    assert {r["job_id"] for r in listed["data"]} == set(ids)  # type: ignore[index]


def test_a_spoken_card_number_is_redacted_everywhere_and_raised_as_a_violation(
    worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    tenant = make_tenant(sessions, "payments")
    configure(sessions, tenant, {"packs": ["pci"]})
    turns = [
        {"speaker": "Agent", "text": "Thank you for calling Acme, how can I help you today?"},
        {
            "speaker": "Customer",
            "text": "I want to pay my bill. My card number is 4111 1111 1111 1111.",
        },
        {"speaker": "Agent", "text": "Thank you. Have a good day."},
    ]
    job_id, body = completed_result(client, poll, tenant, turns)
    text = " ".join(u["text"] for u in body["transcript"])
    assert "4111" not in text and "[card number]" in text
    item = items(body["score"])
    breached = [i for i in item.values() if i["failed"]]
    assert breached and breached[0]["evidence"][0]["utterance_id"] == body["transcript"][1]["id"]
    assert body["score"]["auto_failed"] and body["score"]["band"] == "fail"
    stored = client.get(f"/v1/jobs/{job_id}/result", headers=tenant.headers).get_data(as_text=True)
    assert "4111 1111" not in stored


def test_a_collections_call_outside_calling_hours_breaches_the_contact_policy(
    worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    tenant = make_tenant(sessions, "late-caller")
    configure(sessions, tenant, {"packs": ["debt_collection"]})
    metadata = {
        "consumer_id": "cons-42",
        "call_started_at": "2026-11-20T22:30:00-05:00",
        "consumer_timezone": "America/New_York",
    }
    _, body = completed_result(client, poll, tenant, COLLECTIONS_CALL, metadata=metadata)
    hours = items(body["score"])["within_calling_hours"]
    assert hours["answer"] == "no", hours
    assert items(body["score"])["within_7_in_7"]["answer"] == "yes"
