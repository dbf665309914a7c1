"""API-key authentication: who may call, how a key is presented, and what the database keeps of it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import ApiKey, Base, utcnow
from pipeline.db.session import transaction
from tests.conftest import TenantKey

PROTECTED = [
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/job_00000000000000000000000000"),
    ("GET", "/v1/jobs/job_00000000000000000000000000/result"),
]


def assert_unauthenticated(response: Any) -> None:
    assert response.status_code == 401, response.data
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "unauthenticated"
    assert response.json["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_is_401(client: FlaskClient, method: str, path: str) -> None:
    assert_unauthenticated(client.open(path, method=method, json={"transcript": "Agent: hi"}))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer ci_live_not-a-real-key"},
        {"X-API-Key": "ci_live_not-a-real-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "ci_live_not-a-real-key"},
    ],
    ids=["wrong-bearer", "wrong-x-api-key", "empty-bearer", "basic", "no-scheme"],
)
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_401(
    client: FlaskClient, tenant: TenantKey, headers: dict[str, str], method: str, path: str
) -> None:
    response = client.open(path, method=method, headers=headers, json={"transcript": "Agent: hi"})
    assert_unauthenticated(response)


def test_a_key_of_another_form_is_not_accepted_by_prefix(
    client: FlaskClient, tenant: TenantKey
) -> None:
    """Only the whole key authenticates: its displayed prefix, or the key plus a suffix, do not."""
    for presented in (tenant.key[:12], tenant.key + "x", tenant.key[:-1]):
        response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {presented}"})
        assert_unauthenticated(response)


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"Authorization": f"Bearer {key}"},
        lambda key: {"Authorization": f"bearer {key}"},
        lambda key: {"X-API-Key": key},
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_both_header_forms_authenticate(
    client: FlaskClient, tenant: TenantKey, headers: Any
) -> None:
    response = client.get("/v1/jobs", headers=headers(tenant.key))
    assert response.status_code == 200, response.json
    assert response.json["object"] == "list"


def test_a_revoked_key_is_refused(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    assert client.get("/v1/jobs", headers=tenant.headers).status_code == 200
    with transaction(sessions) as session:
        session.execute(
            update(ApiKey).where(ApiKey.tenant_id == tenant.tenant_id).values(revoked_at=utcnow())
        )
    assert_unauthenticated(client.get("/v1/jobs", headers=tenant.headers))


def test_the_key_is_stored_only_as_a_hash(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    client.get("/v1/jobs", headers=tenant.headers)  # a use may write last_used_at
    with sessions() as session:
        rows = session.execute(
            text("SELECT * FROM api_keys WHERE tenant_id = :t"), {"t": tenant.tenant_id}
        ).all()
    assert len(rows) == 1
    row = rows[0]._asdict()
    for column, value in row.items():
        assert tenant.key not in str(value), f"the secret is readable in api_keys.{column}"
    assert tenant.key.startswith(row["prefix"]) and len(row["prefix"]) <= 12
    assert row["key_hash"] != tenant.key


def test_no_table_holds_the_key(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    """A dump of the whole database reveals no usable key, even after the key was used."""
    client.get("/v1/jobs", headers=tenant.headers)
    client.post("/v1/jobs", json={"transcript": "Agent: hi"}, headers=tenant.headers)
    with sessions() as session:
        for table in Base.metadata.sorted_tables:
            dump = session.execute(text(f"SELECT t::text FROM {table.name} t")).scalars().all()
            assert not any(tenant.key in row for row in dump), f"the key is in {table.name}"
