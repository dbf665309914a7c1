"""`/v1/admin`: the admin key guard, tenants, versioned configuration (JSON and YAML, history,
422 with error locations) and the API-key lifecycle (create, list, rotate with overlap, revoke)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from api import create_app
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.db.tenants import list_keys, rotate_key
from pipeline.settings import Settings
from tests.conftest import TenantKey

ADMIN = "adm_" + "k" * 40
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
YAML_CONFIG = """\
context:
  business_description: Retail bank; agents handle cards and loans.
  policies: [Never ask for a full card number.]
  risk_triggers: [lawyer, chargeback]
  intents:
    - {name: card_blocked, examples: ["my card was declined"]}
packs: [customer_service]
defaults: {language: en, channel_map: {0: agent, 1: customer}}
"""


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    guarded = settings.model_copy(update={"admin_api_key": SecretStr(ADMIN)})
    app = create_app({"TESTING": True, "SETTINGS": guarded})
    yield app
    app.extensions["callintel"].engine.dispose()


def problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["code"] == code
    return body


def new_tenant(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/admin/tenants", json={"name": "acme", **body}, headers=AS_ADMIN)
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == f"/v1/admin/tenants/{response.json['id']}"  # type: ignore[index]
    created: dict[str, Any] = response.json  # type: ignore[assignment]
    return created


def put_yaml(client: FlaskClient, tenant_id: str, text: str) -> TestResponse:
    return client.put(
        f"/v1/admin/tenants/{tenant_id}/config",
        data=text.encode(),
        content_type="application/yaml",
        headers=AS_ADMIN,
    )


def versions(client: FlaskClient, tenant_id: str) -> list[int]:
    response = client.get(f"/v1/admin/tenants/{tenant_id}/config/versions", headers=AS_ADMIN)
    assert response.status_code == 200
    return [v["version"] for v in response.json["data"]]  # type: ignore[index]


def test_without_an_admin_key_every_admin_route_is_absent(settings: Settings) -> None:
    app = create_app({"TESTING": True, "SETTINGS": settings})  # admin_api_key unset
    client = app.test_client()
    absent = client.get("/v1/nothing-here")
    try:
        for method, path in [
            ("GET", "/v1/admin/tenants"),
            ("POST", "/v1/admin/tenants"),
            ("DELETE", "/v1/admin/tenants"),  # a method the route lacks: still 404, not 405
            ("GET", "/v1/admin/tenants/ten_x/config"),
        ]:
            response = client.open(path, method=method, headers=AS_ADMIN)
            problem(response, 404, "not_found")
            assert response.get_data() == absent.get_data()
    finally:
        app.extensions["callintel"].engine.dispose()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {ADMIN}x"},
        {"Authorization": f"Basic {ADMIN}"},
        {"X-API-Key": ADMIN},  # the tenant header form is not accepted for admin
    ],
)
def test_a_wrong_or_missing_admin_key_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    body = problem(client.get("/v1/admin/tenants", headers=headers), 401, "unauthenticated")
    assert "admin" in body["detail"]


def test_a_tenant_key_is_not_an_admin_key(client: FlaskClient, tenant: TenantKey) -> None:
    problem(client.get("/v1/admin/tenants", headers=tenant.headers), 401, "unauthenticated")
    assert client.get("/v1/admin/tenants", headers=AS_ADMIN).status_code == 200


def test_create_list_show_and_rename_a_tenant(client: FlaskClient) -> None:
    created = new_tenant(client, config={"packs": ["customer_service"]})
    assert created["config_version"] == 1 and created["object"] == "tenant"
    listed = client.get("/v1/admin/tenants", headers=AS_ADMIN).json
    assert created["id"] in [t["id"] for t in listed["data"]]  # type: ignore[index]
    path = f"/v1/admin/tenants/{created['id']}"
    renamed = client.patch(path, json={"name": "Acme Bank"}, headers=AS_ADMIN)
    assert renamed.status_code == 200 and renamed.json["name"] == "Acme Bank"  # type: ignore[index]
    assert client.get(path, headers=AS_ADMIN).json["name"] == "Acme Bank"  # type: ignore[index]
    problem(client.get("/v1/admin/tenants/ten_missing", headers=AS_ADMIN), 404, "not_found")


def test_config_versions_count_up_and_stay_readable(client: FlaskClient) -> None:
    tenant_id = new_tenant(client)["id"]
    path = f"/v1/admin/tenants/{tenant_id}/config"
    bodies = [{"packs": ["pci"]}, {"packs": ["pci", "debt_collection"]}, {"dedupe": "sha256"}]
    for expected, body in enumerate(bodies, start=1):
        stored = client.put(path + "?comment=step", json=body, headers=AS_ADMIN)
        assert stored.status_code == 200, stored.json
        assert stored.json["version"] == expected  # type: ignore[index]
    assert versions(client, tenant_id) == [1, 2, 3]
    history = client.get(path + "/versions", headers=AS_ADMIN).json["data"]  # type: ignore[index]
    assert {(h["author"], h["comment"]) for h in history} == {("admin-api", "step")}
    first = client.get(path + "/versions/1", headers=AS_ADMIN)
    assert first.json["config"]["packs"] == ["pci"]  # type: ignore[index]
    assert first.headers["Callintel-Config-Version"] == "1"
    current = client.get(path, headers=AS_ADMIN).json
    assert (current["version"], current["config"]["dedupe"]) == (3, "sha256")  # type: ignore[index]
    problem(client.get(path + "/versions/9", headers=AS_ADMIN), 404, "not_found")
    problem(client.get(path + "/versions/one", headers=AS_ADMIN), 404, "not_found")


def test_yaml_export_then_import_gives_the_same_config_as_a_new_version(
    client: FlaskClient,
) -> None:
    tenant_id = new_tenant(client)["id"]
    path = f"/v1/admin/tenants/{tenant_id}/config"
    assert put_yaml(client, tenant_id, YAML_CONFIG).json["version"] == 1  # type: ignore[index]

    exported = client.get(path, headers={**AS_ADMIN, "Accept": "application/yaml"})
    assert exported.status_code == 200 and exported.mimetype == "application/yaml"
    assert exported.headers["Callintel-Config-Version"] == "1"
    text = exported.get_data(as_text=True)
    assert yaml.safe_load(text)["context"]["risk_triggers"] == ["lawyer", "chargeback"]

    reimported = put_yaml(client, tenant_id, text)
    assert reimported.json["version"] == 2  # type: ignore[index]
    one = client.get(path + "/versions/1", headers=AS_ADMIN).json["config"]  # type: ignore[index]
    two = client.get(path + "/versions/2", headers=AS_ADMIN).json["config"]  # type: ignore[index]
    assert one == two
    assert two["defaults"]["channel_map"] == {"0": "agent", "1": "customer"}
    assert two["context"]["intents"][0]["name"] == "card_blocked"


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("packs: [a\n", ""),  # not YAML
        ("- just\n- a list\n", ""),
        ("dedupe: always\n", "dedupe"),
        ("context:\n  risk_trigers: [x]\n", "context.risk_trigers"),
        ("retention_days: 0\n", "retention_days"),
        ("providers: {analyzer: chatgpt}\n", "providers.analyzer"),
        ("a: &x [1]\nb: *x\n", ""),  # aliases are refused
        ("packs: [pci, no_such_pack]\n", "packs.1"),  # refused now, not at every job's analyze
        (
            "scorecards:\n  default:\n    id: c\n    version: 1\n    name: c\n    sections:\n"
            "      - id: s\n        label: s\n        items:\n          - id: i\n            label: i\n"
            "            evaluator: {type: phrase, phrases: ['(unclosed'], match: regex}\n",
            "scorecards.default.sections[0].items[0].evaluator",
        ),
    ],
)
def test_invalid_yaml_or_config_is_422_with_locations_and_no_new_version(
    client: FlaskClient, text: str, loc: str
) -> None:
    tenant_id = new_tenant(client, config={"packs": ["pci"]})["id"]
    body = problem(put_yaml(client, tenant_id, text), 422, "invalid_config")
    assert loc in [e["loc"] for e in body["errors"]]
    assert versions(client, tenant_id) == [1]
    current = client.get(f"/v1/admin/tenants/{tenant_id}/config", headers=AS_ADMIN).json
    assert current["config"]["packs"] == ["pci"]  # type: ignore[index]


def test_invalid_json_config_and_wrong_media_type(client: FlaskClient) -> None:
    tenant_id = new_tenant(client)["id"]
    path = f"/v1/admin/tenants/{tenant_id}/config"
    bad = problem(client.put(path, json={"packs": "x"}, headers=AS_ADMIN), 422, "invalid_config")
    assert [e["loc"] for e in bad["errors"]] == ["packs"]
    broken = client.put(path, data="{", content_type="application/json", headers=AS_ADMIN)
    problem(broken, 422, "invalid_config")
    text = client.put(path, data="packs: []", content_type="text/plain", headers=AS_ADMIN)
    problem(text, 415, "unsupported_media_type")
    assert versions(client, tenant_id) == []


def test_a_tenant_with_an_invalid_config_is_not_created(client: FlaskClient) -> None:
    name = "never-created-" + hashlib.sha256(b"x").hexdigest()[:8]
    response = client.post(
        "/v1/admin/tenants", json={"name": name, "config": {"dedupe": 1}}, headers=AS_ADMIN
    )
    assert problem(response, 422, "invalid_config")["errors"][0]["loc"] == "dedupe"
    listed = client.get("/v1/admin/tenants", headers=AS_ADMIN).json["data"]  # type: ignore[index]
    assert name not in [t["name"] for t in listed]


def create_key(client: FlaskClient, tenant_id: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/admin/tenants/{tenant_id}/keys", json={"name": "ops"}, headers=AS_ADMIN
    )
    assert response.status_code == 201, response.json
    created: dict[str, Any] = response.json  # type: ignore[assignment]
    return created


def works(client: FlaskClient, secret: str) -> bool:
    status = client.get("/v1/tenant", headers={"Authorization": f"Bearer {secret}"}).status_code
    assert status in (200, 401)
    return status == 200


def test_keys_are_shown_once_and_listed_without_secrets(client: FlaskClient) -> None:
    tenant_id = new_tenant(client)["id"]
    created = create_key(client, tenant_id)
    assert created["secret"].startswith("ci_live_") and created["name"] == "ops"
    assert works(client, created["secret"])
    listing = client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=AS_ADMIN)
    raw = listing.get_data(as_text=True)
    assert created["secret"] not in raw
    assert hashlib.sha256(created["secret"].encode()).hexdigest() not in raw
    (key,) = json.loads(raw)["data"]
    assert set(key) == {
        "id",
        "object",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert created["secret"].startswith(key["prefix"]) and key["last_used_at"] is not None


def test_rotation_keeps_the_old_key_during_the_overlap(client: FlaskClient) -> None:
    tenant_id = new_tenant(client)["id"]
    old = create_key(client, tenant_id)
    path = f"/v1/admin/tenants/{tenant_id}/keys/{old['id']}/rotate"
    rotated = client.post(path, headers=AS_ADMIN)
    assert rotated.status_code == 201, rotated.json
    new: dict[str, Any] = rotated.json  # type: ignore[assignment]
    assert new["id"] != old["id"] and new["name"] == "ops"
    assert new["previous"]["id"] == old["id"] and new["previous"]["expires_at"] is not None
    assert works(client, new["secret"]) and works(client, old["secret"])
    listing = client.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=AS_ADMIN).json
    expiring = {k["id"]: k["expires_at"] for k in listing["data"]}  # type: ignore[index]
    assert expiring[new["id"]] is None and expiring[old["id"]] is not None


def test_the_old_key_stops_when_the_overlap_has_passed(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        (key,) = list_keys(session, tenant.tenant_id)
        rotated = rotate_key(
            session, tenant_id=tenant.tenant_id, key_id=key.id, now=utcnow() - timedelta(hours=25)
        )
    assert rotated is not None
    assert not works(client, tenant.key)
    assert works(client, rotated.new.secret)
    # An expired key can no longer be rotated (or resurrected by a rotation).
    again = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key.id}/rotate", headers=AS_ADMIN
    )
    problem(again, 404, "not_found")


def test_revocation_is_immediate_and_idempotent(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        (key,) = list_keys(session, tenant.tenant_id)
    assert works(client, tenant.key)
    # Another tenant's path never reaches this key.
    wrong = f"/v1/admin/tenants/{other_tenant.tenant_id}/keys/{key.id}"
    problem(client.delete(wrong, headers=AS_ADMIN), 404, "not_found")
    assert works(client, tenant.key)

    path = f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key.id}"
    assert client.delete(path, headers=AS_ADMIN).status_code == 204
    assert not works(client, tenant.key)
    assert client.delete(path, headers=AS_ADMIN).status_code == 204
    problem(client.post(path + "/rotate", headers=AS_ADMIN), 404, "not_found")
    problem(client.delete(path + "x", headers=AS_ADMIN), 404, "not_found")


def test_every_schema_reference_of_the_document_resolves(client: FlaskClient) -> None:
    spec: dict[str, Any] = client.get("/openapi.json").json  # type: ignore[assignment]
    text = json.dumps(spec)
    refs = {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}
    assert {"TenantConfig-Input", "TenantConfig-Output", "KeyRotated"} <= refs
    assert refs <= set(spec["components"]["schemas"])
    assert spec["paths"]["/v1/admin/tenants"]["get"]["security"] == [{"adminKey": []}]
