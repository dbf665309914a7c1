"""DELETE /v1/jobs/{id}, the status document after a retention purge, and GET /v1/audit-events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.state import AppState
from pipeline import retention
from pipeline.db.models import ApiKey, Job, utcnow
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from pipeline.settings import Settings
from schemas.tenant import TenantConfig
from tests.conftest import TenantKey
from tests.support.finished_jobs import finish
from tests.unit.api.conftest import PostTranscript

NEVER_ISSUED = "job_00000000000000000000000000"
Keys = Callable[[str], list[str]]
Rows = Callable[[str], list[Job]]


@pytest.fixture
def finished(
    post_transcript: PostTranscript, sessions: sessionmaker[Session]
) -> Callable[[TenantKey], str]:
    def make(tenant: TenantKey) -> str:
        job_id: str = post_transcript(tenant)["id"]
        finish(sessions, job_id)
        return job_id

    return make


def key_id(sessions: sessionmaker[Session], tenant: TenantKey) -> str:
    with sessions() as session:
        query = select(ApiKey.id).where(ApiKey.tenant_id == tenant.tenant_id)
        return session.scalars(query).one()


def test_deleting_a_finished_job_removes_everything_and_is_audited(
    client: FlaskClient,
    tenant: TenantKey,
    finished: Callable[[TenantKey], str],
    stored_keys: Keys,
    job_rows: Rows,
    sessions: sessionmaker[Session],
) -> None:
    job_id = finished(tenant)
    assert stored_keys(tenant.tenant_id) != []

    response = client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers)

    assert (response.status_code, response.get_data()) == (204, b"")
    assert stored_keys(tenant.tenant_id) == []
    assert job_rows(tenant.tenant_id) == []
    assert client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).status_code == 404
    again = client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers)
    assert (again.status_code, again.json["code"]) == (404, "not_found")  # type: ignore[index]
    events = client.get("/v1/audit-events", headers=tenant.headers).json["data"]  # type: ignore[index]
    assert [(e["job_id"], e["action"], e["actor"]) for e in events] == [
        (job_id, "job.deleted", key_id(sessions, tenant))
    ]
    assert events[0]["removed"]["blobs"] == 1 and events[0]["removed"]["jobs"] == 1


def test_another_tenants_job_is_a_404_identical_to_a_missing_one(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    finished: Callable[[TenantKey], str],
    job_rows: Rows,
) -> None:
    job_id = finished(tenant)

    theirs = client.delete(f"/v1/jobs/{job_id}", headers=other_tenant.headers)
    missing = client.delete(f"/v1/jobs/{NEVER_ISSUED}", headers=other_tenant.headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.mimetype == "application/problem+json"
    assert theirs.get_data() == missing.get_data()
    assert [j.id for j in job_rows(tenant.tenant_id)] == [job_id]
    audit = client.get("/v1/audit-events", headers=other_tenant.headers).json
    assert audit["data"] == []  # type: ignore[index]


def test_a_job_still_running_is_a_409(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    stored_keys: Keys,
    job_rows: Rows,
) -> None:
    job_id = post_transcript(tenant)["id"]  # no worker: it stays queued

    response = client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "job_in_progress"  # type: ignore[index]
    assert response.headers["Retry-After"]
    assert [j.id for j in job_rows(tenant.tenant_id)] == [job_id]
    assert len(stored_keys(tenant.tenant_id)) == 1


def test_a_retried_delete_with_its_idempotency_key_is_replayed(
    client: FlaskClient, tenant: TenantKey, finished: Callable[[TenantKey], str]
) -> None:
    job_id = finished(tenant)
    headers = {**tenant.headers, "Idempotency-Key": f"delete-{job_id}"}

    first = client.delete(f"/v1/jobs/{job_id}", headers=headers)
    retry = client.delete(f"/v1/jobs/{job_id}", headers=headers)
    fresh = client.delete(f"/v1/jobs/{job_id}", headers={**headers, "Idempotency-Key": "other"})

    assert first.status_code == retry.status_code == 204
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert fresh.status_code == 404
    events = client.get("/v1/audit-events", headers=tenant.headers).json["data"]  # type: ignore[index]
    assert len(events) == 1  # the replay deleted nothing more


def test_a_purged_input_shows_in_the_status_and_the_result_stays(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    sessions: sessionmaker[Session],
    app_state: AppState,
    stored_keys: Keys,
) -> None:
    job_id = post_transcript(tenant)["id"]
    finish(sessions, job_id, days_ago=3)
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, TenantConfig(retention_days=2), author="test")
    before = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json
    assert before["input"] == {"kind": "transcript", "purged_at": None}  # type: ignore[index]

    retention.purge_expired(sessions, app_state.blobs, Settings(), now=utcnow())

    view: Any = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json
    assert view["status"] == "completed" and view["input"]["purged_at"] is not None
    assert client.get(f"/v1/jobs/{job_id}/result", headers=tenant.headers).status_code == 200
    assert stored_keys(tenant.tenant_id) == []
    events = client.get("/v1/audit-events", headers=tenant.headers).json["data"]  # type: ignore[index]
    assert [(e["action"], e["actor"]) for e in events] == [("job.input_purged", "retention")]
    rescore = client.post(f"/v1/jobs/{job_id}/rescore", headers=tenant.headers, json={})
    assert (rescore.status_code, rescore.json["code"]) == (409, "input_purged")  # type: ignore[index]


def test_a_job_being_rescored_is_not_deleted(
    client: FlaskClient, tenant: TenantKey, finished: Callable[[TenantKey], str], job_rows: Rows
) -> None:
    job_id = finished(tenant)
    assert (
        client.post(f"/v1/jobs/{job_id}/rescore", headers=tenant.headers, json={}).status_code
        == 202
    )

    response = client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers)

    assert (response.status_code, response.json["code"]) == (409, "job_in_progress")  # type: ignore[index]
    assert [j.id for j in job_rows(tenant.tenant_id)] == [job_id]


def test_audit_events_page_newest_first_by_cursor(
    client: FlaskClient, tenant: TenantKey, finished: Callable[[TenantKey], str]
) -> None:
    deleted = [finished(tenant) for _ in range(3)]
    for job_id in deleted:
        assert client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers).status_code == 204

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page: Any = client.get("/v1/audit-events", headers=tenant.headers, query_string=query).json
        seen += [e["job_id"] for e in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert (seen, pages) == (deleted[::-1], 2)
    one = client.get(
        "/v1/audit-events", headers=tenant.headers, query_string={"job_id": deleted[1]}
    ).json
    assert [e["job_id"] for e in one["data"]] == [deleted[1]]  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"limit": "0"}, "invalid_request"),
        ({"action": "job.exploded"}, "invalid_request"),
        ({"job_id": "x\x00"}, "invalid_request"),
    ],
)
def test_bad_audit_queries_are_400(
    client: FlaskClient, tenant: TenantKey, query: dict[str, str], code: str
) -> None:
    response = client.get("/v1/audit-events", headers=tenant.headers, query_string=query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code  # type: ignore[index]


def test_audit_events_need_an_api_key(client: FlaskClient) -> None:
    assert client.get("/v1/audit-events").status_code == 401
    assert client.delete(f"/v1/jobs/{NEVER_ISSUED}").status_code == 401


def test_answers_conform_to_the_openapi_document(
    client: FlaskClient, tenant: TenantKey, finished: Callable[[TenantKey], str]
) -> None:
    spec: Any = client.get("/openapi.json").json
    job_id = finished(tenant)
    view = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json
    client.delete(f"/v1/jobs/{job_id}", headers=tenant.headers)
    listing = client.get("/v1/audit-events", headers=tenant.headers).json

    def errors(name: str, instance: Any) -> list[str]:
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        return [e.message for e in OAS31Validator(schema).iter_errors(instance)]

    assert errors("JobView", view) == []
    assert errors("AuditEventList", listing) == []
    assert errors("AuditEventList", {"data": [{"id": 1}]}) != []  # the check itself can fail
    assert "delete" in spec["paths"]["/v1/jobs/{job_id}"]
