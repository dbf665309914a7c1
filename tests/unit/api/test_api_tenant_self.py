"""`/v1/tenant`: a key sees its own tenant and configuration history, never another tenant's; and
intake keeps reading the tenant's defaults from a versioned TenantConfig body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import Job, Tenant
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from schemas.tenant import TenantConfig
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostTranscript

A_CONFIG = {
    "context": {"business_description": "Acme's secret playbook", "risk_triggers": ["lawyer"]},
    "packs": ["customer_service"],
}


def configure(sessions: sessionmaker[Session], tenant: TenantKey, body: dict[str, Any]) -> int:
    with transaction(sessions) as session:
        config = TenantConfig.model_validate(body)
        return put_config(session, tenant.tenant_id, config, author="test")


def own(client: FlaskClient, tenant: TenantKey, path: str = "/v1/tenant") -> dict[str, Any]:
    response = client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def test_each_key_sees_only_its_own_tenant_and_config(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    sessions: sessionmaker[Session],
) -> None:
    assert configure(sessions, tenant, A_CONFIG) == 1
    assert configure(sessions, tenant, {**A_CONFIG, "dedupe": "sha256"}) == 2

    mine = own(client, tenant)
    assert (mine["id"], mine["name"], mine["config_version"]) == (tenant.tenant_id, "acme", 2)
    assert mine["config"]["context"]["risk_triggers"] == ["lawyer"]
    assert mine["config"]["dedupe"] == "sha256"

    theirs = client.get("/v1/tenant", headers=other_tenant.headers)
    assert theirs.json["id"] == other_tenant.tenant_id  # type: ignore[index]
    assert theirs.json["config_version"] == 0  # type: ignore[index]
    assert theirs.json["config"] == TenantConfig().model_dump(mode="json")  # type: ignore[index]
    assert "secret playbook" not in theirs.get_data(as_text=True)


def test_own_config_history(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    configure(sessions, tenant, A_CONFIG)
    configure(sessions, tenant, {"packs": []})
    history = own(client, tenant, "/v1/tenant/config/versions")["data"]
    assert [(h["version"], h["author"]) for h in history] == [(1, "test"), (2, "test")]
    assert own(client, other_tenant, "/v1/tenant/config/versions")["data"] == []


def test_no_key_or_a_wrong_key_is_401(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer ci_live_nope"}):
        for path in ("/v1/tenant", "/v1/tenant/config/versions"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json["code"] == "unauthenticated"  # type: ignore[index]


def test_intake_uses_the_defaults_of_a_versioned_config(
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    post_transcript: PostTranscript,
    job_rows: Callable[[str], list[Job]],
) -> None:
    # Stored whole, the config spells channel_map and call_type out as null: our defaults apply.
    configure(sessions, tenant, {"defaults": {"language": "es"}})
    job = post_transcript(tenant)
    options = next(j for j in job_rows(tenant.tenant_id) if j.id == job["id"]).envelope["options"]
    assert options["language"] == "es"
    assert options["channel_map"] == {"0": "agent", "1": "customer"}
    assert options["call_type"] is None


def test_a_stored_config_that_no_longer_validates_is_a_problem_not_a_500(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        row = session.get(Tenant, tenant.tenant_id)
        assert row is not None
        row.config = {"dedupe": "sometimes"}  # written by hand, before validation existed
    response = client.get("/v1/tenant", headers=tenant.headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "tenant_config_invalid"  # type: ignore[index]
