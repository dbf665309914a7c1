"""Re-scoring requests: only a tenant's own completed jobs, clear problems for everything else;
what the tenant's cap allows starts at once, the rest waits unpublished."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import Job, OutboxMessage
from pipeline.db.rescore_models import Rescore
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import JobStatus
from tests.conftest import TenantKey
from tests.unit.api.conftest import TEXT_TRANSCRIPT


def queued_job(client: FlaskClient, tenant: TenantKey) -> str:
    response = client.post("/v1/jobs", json={"transcript": TEXT_TRANSCRIPT}, headers=tenant.headers)
    assert response.status_code == 202
    job_id: str = response.json["id"]  # type: ignore[index]
    return job_id


def test_a_job_that_is_not_completed_cannot_be_rescored(
    client: FlaskClient, tenant: TenantKey
) -> None:
    job_id = queued_job(client, tenant)  # no worker here: it stays queued
    response = client.post(f"/v1/jobs/{job_id}/rescore", headers=tenant.headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "job_not_completed"  # type: ignore[index]


def test_another_tenants_job_is_a_404_like_a_missing_one(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    job_id = queued_job(client, tenant)
    theirs = client.post(f"/v1/jobs/{job_id}/rescore", headers=other_tenant.headers)
    missing = client.post("/v1/jobs/job_00000000000000000000000000/rescore", headers=tenant.headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json == missing.json


def test_bad_bodies_are_problems_not_500s(client: FlaskClient, tenant: TenantKey) -> None:
    job_id = queued_job(client, tenant)
    unknown = client.post(
        f"/v1/jobs/{job_id}/rescore", json={"reanalyse": True}, headers=tenant.headers
    )
    assert unknown.status_code == 422 and unknown.json["code"] == "validation_error"  # type: ignore[index]
    text = client.post(
        f"/v1/jobs/{job_id}/rescore", data="x", content_type="text/plain", headers=tenant.headers
    )
    assert text.status_code == 415
    too_many = client.post("/v1/rescore", json={"limit": 100000}, headers=tenant.headers)
    assert too_many.status_code == 422


def mark_completed(sessions: sessionmaker[Session], job_id: str) -> None:
    with transaction(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.COMPLETED.value


def test_a_bulk_rescore_selects_only_completed_jobs_of_the_tenant(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    sessions: sessionmaker[Session],
) -> None:
    queued_job(client, tenant)  # not completed: not selected
    ours, theirs = queued_job(client, tenant), queued_job(client, other_tenant)
    mark_completed(sessions, ours)
    mark_completed(sessions, theirs)
    response = client.post("/v1/rescore", json={}, headers=tenant.headers)
    assert response.status_code == 202
    assert response.json["count"] == 1  # type: ignore[index]
    assert [r["job_id"] for r in response.json["rescores"]] == [ours]  # type: ignore[index]
    assert client.get("/v1/rescores/rsc_nope", headers=tenant.headers).status_code == 404


def test_a_bulk_rescore_starts_what_the_tenants_cap_allows_and_the_rest_waits_unpublished(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], settings: Settings
) -> None:
    ids = [queued_job(client, tenant) for _ in range(6)]
    for job_id in ids:
        mark_completed(sessions, job_id)
    response = client.post("/v1/rescore", json={}, headers=tenant.headers)
    assert response.status_code == 202
    shown = [r["status"] for r in response.json["rescores"]]  # type: ignore[index]
    assert shown == ["queued"] * 6  # waiting looks like queued to a client
    with sessions() as session:
        stored = session.scalars(
            select(Rescore.status).where(Rescore.tenant_id == tenant.tenant_id)
        )
        published = session.scalars(
            select(OutboxMessage.job_id).where(
                OutboxMessage.topic == "rescore.start", OutboxMessage.job_id.in_(ids)
            )
        ).all()
    cap = settings.rescore_tenant_max_in_flight
    assert 0 < cap < 6
    assert sorted(stored) == ["queued"] * cap + ["waiting"] * (6 - cap)
    assert sorted(published) == sorted(ids[:cap])  # the oldest ones
    one = client.get(response.json["rescores"][5]["links"]["self"], headers=tenant.headers)  # type: ignore[index]
    assert one.json["status"] == "queued"  # type: ignore[index]
