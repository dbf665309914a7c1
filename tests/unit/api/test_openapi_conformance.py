"""Schemathesis against the in-process app: every documented operation answers as documented."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case

from api import create_app
from api.openapi import openapi_document
from pipeline.db.migrate import upgrade
from pipeline.settings import Settings
from tests.conftest import TenantKey, make_tenant
from tests.support.services import postgres_database

ADMIN = "admin-conformance-key"
OK = ["2xx", "3xx", "401", "403", "404", "409", "429"]


def beyond_json_schema(name: str, *statuses: str) -> dict[str, Any]:
    """Schema-valid input this operation may still refuse, with a documented status, because the
    rule is not one JSON Schema can state (the reason is given where this is called)."""
    check = {"expected-statuses": [*OK, *statuses]}
    return {"include-name": name, "checks": {"positive_data_acceptance": check}}


CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20240601,
        "generation": {"max-examples": 5, "deterministic": True},
        "operations": [
            # TenantConfig's coverage cases exhaust memory while they are built; examples and
            # fuzzing still run for this operation.
            {
                "include-name": "PUT /v1/admin/tenants/{tenant_id}/config",
                "phases": {"coverage": {"enabled": False}},
                **beyond_json_schema("PUT /v1/admin/tenants/{tenant_id}/config", "422"),
            },
            # The audio is sniffed from its bytes: a schema can say "binary", not "audio".
            beyond_json_schema("POST /v1/jobs", "415", "422"),
            # Cursors are opaque: only one the server issued is valid.
            beyond_json_schema("GET /v1/jobs", "400"),
            beyond_json_schema("GET /v1/batches", "400"),
            beyond_json_schema("GET /v1/audit-events", "400"),
            # Import prefixes must be allowed by the tenant's configuration.
            beyond_json_schema("POST /v1/batches", "422"),
            # A webhook URL is checked against DNS and the unsafe-address rules.
            beyond_json_schema("POST /v1/webhooks/endpoints", "422"),
            beyond_json_schema("PATCH /v1/webhooks/endpoints/{endpoint_id}", "422"),
            # Generated Idempotency-Keys repeat across cases: a key reused for another request.
            beyond_json_schema("DELETE /v1/jobs/{job_id}", "422"),
        ],
    }
)


@schemathesis.serializer("application/x-ndjson")
def ndjson(_ctx: Any, value: Any) -> bytes:
    """Batch items: one JSON value per line (a generated array is its lines)."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


class AppUnderTest:
    """The WSGI app schemathesis talks to (its checks' own probes too); the fixture points it at
    the app it builds, which needs the session's database and so cannot exist at import time."""

    target: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.target is not None, "the conf_app fixture sets the app"
        return self.target(environ, start_response)  # type: ignore[no-any-return]


APP = AppUnderTest()
schema = schemathesis.openapi.from_dict(openapi_document(admin=True), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module")
def conf_app(settings: Settings) -> Iterator[Flask]:
    with postgres_database() as url:
        upgrade(url)
        own = settings.model_copy(
            update={
                "database_url": url,
                "admin_api_key": SecretStr(ADMIN),
                "events_max_lifetime_s": 0.5,
                "events_poll_s": 0.1,
            }
        )
        app = create_app({"TESTING": True, "SETTINGS": own})
        APP.target = app
        yield app
        APP.target = None
        app.extensions["callintel"].engine.dispose()


@pytest.fixture(scope="module")
def conf_tenant(conf_app: Flask) -> TenantKey:
    return make_tenant(conf_app.extensions["callintel"].sessions, "conformance")


@schema.parametrize()
def test_conformance(case: Case, conf_app: Flask, conf_tenant: TenantKey) -> None:
    admin = case.path.startswith("/v1/admin")
    headers = {"Authorization": f"Bearer {ADMIN}"} if admin else conf_tenant.headers
    case.call_and_validate(headers=headers)


def test_a_live_event_stream_matches_its_schema(conf_app: Flask, conf_tenant: TenantKey) -> None:
    # Generated job ids never name a job, so the stream itself is checked here, on a real one.
    client = conf_app.test_client()
    body = {"transcript": "Agent: Hello.\nCustomer: Hi."}
    job = client.post("/v1/jobs", json=body, headers=conf_tenant.headers).json
    assert job is not None
    case = schema["/v1/jobs/{job_id}/events"]["GET"].Case(path_parameters={"job_id": job["id"]})
    response = case.call(headers=conf_tenant.headers)
    assert response.status_code == 200
    assert b"event: stage" in response.content  # the queued job's first event
    case.validate_response(response, headers=conf_tenant.headers)
