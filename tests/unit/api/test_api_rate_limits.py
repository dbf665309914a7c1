"""Per-tenant rate limits on the creating endpoints: 429 with Retry-After and RateLimit-* headers,
tenants apart, refill, overrides, the bulk rescore's cost, and failing open without Redis."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from api import create_app
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from pipeline.settings import Settings
from schemas.tenant import TenantConfig
from tests.conftest import TenantKey
from tests.support.services import free_port

HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")
MakeClient = Callable[..., FlaskClient]


@pytest.fixture
def make_client(settings: Settings) -> Iterator[MakeClient]:
    """A client of an app whose settings differ from the session's by `updates`."""
    apps: list[Flask] = []

    def make(**updates: Any) -> FlaskClient:
        app = create_app({"TESTING": True, "SETTINGS": settings.model_copy(update=updates)})
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["callintel"].engine.dispose()


def create_batch(client: FlaskClient, tenant: TenantKey) -> TestResponse:
    return client.post("/v1/batches", json={"name": "nightly"}, headers=tenant.headers)


def limits(response: TestResponse) -> dict[str, str]:
    return {h: response.headers[h] for h in HEADERS if h in response.headers}


def test_a_burst_then_429_with_retry_after_and_headers(
    make_client: MakeClient, tenant: TenantKey
) -> None:
    client = make_client(rate_limit_batch_per_s=0.01, rate_limit_batch_burst=3)  # 1 per 100 s
    accepted = [create_batch(client, tenant) for _ in range(3)]
    assert [r.status_code for r in accepted] == [201, 201, 201]
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["2", "1", "0"]
    assert limits(accepted[0])["RateLimit-Limit"] == "3"
    assert limits(accepted[0])["RateLimit-Policy"] == "3;w=300"
    assert 1 <= int(accepted[-1].headers["RateLimit-Reset"]) <= 300

    refused = create_batch(client, tenant)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.json is not None and refused.json["code"] == "rate_limited"
    assert "batch rate limit is 0.01 per second with bursts of 3" in refused.json["detail"]
    assert 90 <= int(refused.headers["Retry-After"]) <= 100
    assert limits(refused)["RateLimit-Remaining"] == "0"
    assert set(limits(refused)) == set(HEADERS)
    listed = client.get("/v1/batches", headers=tenant.headers).json
    assert listed is not None and len(listed["data"]) == 3  # the refused one made nothing


def test_another_tenant_is_unaffected(
    make_client: MakeClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    client = make_client(rate_limit_batch_per_s=0.01, rate_limit_batch_burst=1)
    assert create_batch(client, tenant).status_code == 201
    assert create_batch(client, tenant).status_code == 429
    theirs = create_batch(client, other_tenant)
    assert theirs.status_code == 201
    assert theirs.headers["RateLimit-Remaining"] == "0"  # a full bucket of their own, now spent


def test_units_drip_back_over_time(make_client: MakeClient, tenant: TenantKey) -> None:
    client = make_client(rate_limit_batch_per_s=0.5, rate_limit_batch_burst=1)  # 1 per 2 s
    assert create_batch(client, tenant).status_code == 201
    refused = create_batch(client, tenant)
    assert refused.status_code == 429 and refused.headers["Retry-After"] in ("1", "2")
    time.sleep(int(refused.headers["Retry-After"]) + 0.05)  # as a client should
    assert create_batch(client, tenant).status_code == 201


def test_successful_submissions_carry_the_headers(
    client: FlaskClient, make_client: MakeClient, tenant: TenantKey
) -> None:
    body = {"transcript": "Agent: Hello.\nCustomer: Hi."}
    job = client.post("/v1/jobs", json=body, headers=tenant.headers)  # the deployment's defaults
    assert job.status_code == 202
    assert limits(job) == {
        "RateLimit-Limit": "200",
        "RateLimit-Remaining": "199",
        "RateLimit-Reset": "1",
        "RateLimit-Policy": "200;w=4",
    }
    upload = client.post("/v1/uploads", json={"bytes": 1000}, headers=tenant.headers)
    assert upload.status_code == 201 and upload.headers["RateLimit-Policy"] == "100;w=5"
    slow = make_client(rate_limit_submit_per_s=0.01, rate_limit_submit_burst=5)
    assert slow.post("/v1/jobs", json=body, headers=tenant.headers).status_code == 202
    refused_body = slow.post("/v1/jobs", json={"nope": 1}, headers=tenant.headers)
    assert refused_body.status_code == 422  # a request the view refuses still counted
    assert refused_body.headers["RateLimit-Remaining"] == "3"


def test_reads_and_unauthenticated_requests_are_not_limited(
    make_client: MakeClient, tenant: TenantKey
) -> None:
    client = make_client(rate_limit_batch_per_s=0.01, rate_limit_batch_burst=1)
    stranger = client.post("/v1/batches", json={"name": "x"}, headers={"X-API-Key": "nope"})
    assert stranger.status_code == 401 and not limits(stranger)
    assert not limits(client.get("/v1/batches", headers=tenant.headers))
    assert create_batch(client, tenant).status_code == 201  # the stranger charged nothing


def test_a_rate_of_zero_disables_the_class(make_client: MakeClient, tenant: TenantKey) -> None:
    client = make_client(rate_limit_batch_per_s=0, rate_limit_batch_burst=1)
    responses = [create_batch(client, tenant) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert not limits(responses[0])


def test_a_tenant_override_applies(
    make_client: MakeClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    sessions: sessionmaker[Session],
) -> None:
    config = TenantConfig.model_validate({"rate_limits": {"batch": {"per_s": 0.01, "burst": 5}}})
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, config, author="test")
    client = make_client(rate_limit_batch_per_s=0.01, rate_limit_batch_burst=1)
    ours = [create_batch(client, tenant) for _ in range(5)]
    assert [r.status_code for r in ours] == [201] * 5
    assert ours[0].headers["RateLimit-Policy"] == "5;w=500"
    assert create_batch(client, tenant).status_code == 429
    assert create_batch(client, other_tenant).status_code == 201  # the deployment's burst of 1
    assert create_batch(client, other_tenant).status_code == 429


def test_a_tenant_override_of_zero_lifts_the_limit(
    make_client: MakeClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    config = TenantConfig.model_validate({"rate_limits": {"batch": {"per_s": 0, "burst": 1}}})
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, config, author="test")
    client = make_client(rate_limit_batch_per_s=0.01, rate_limit_batch_burst=1)
    assert [create_batch(client, tenant).status_code for _ in range(3)] == [201, 201, 201]


def test_a_bulk_rescore_is_charged_a_unit_per_hundred_jobs(
    make_client: MakeClient, tenant: TenantKey
) -> None:
    client = make_client(rate_limit_rescore_per_s=0.01, rate_limit_rescore_burst=10)

    def bulk(body: dict[str, Any]) -> TestResponse:
        return client.post("/v1/rescore", json=body, headers=tenant.headers)

    default = bulk({})  # limit 500: 5 units, though the tenant has no completed job yet
    assert default.status_code == 202 and default.headers["RateLimit-Remaining"] == "5"
    listed = bulk({"filter": {"job_ids": ["job_a", "job_b"]}})  # two ids: 1 unit
    assert listed.status_code == 202 and listed.headers["RateLimit-Remaining"] == "4"
    refused = bulk({"limit": 1000})
    assert refused.status_code == 429
    assert refused.json is not None and "this request costs 10" in refused.json["detail"]
    assert bulk({"limit": 301}).headers["RateLimit-Remaining"] == "0"  # 4 units
    one = client.post("/v1/jobs/job_00000000000000000000000000/rescore", headers=tenant.headers)
    assert one.status_code == 429  # one job's rescore shares the bucket


def test_fails_open_when_redis_refuses(
    make_client: MakeClient, tenant: TenantKey, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(
        rate_limit_redis_url=f"redis://127.0.0.1:{free_port()}/0",
        rate_limit_batch_per_s=0.01,
        rate_limit_batch_burst=1,
    )
    with caplog.at_level(logging.WARNING, logger="api.rate_limits"):
        responses = [create_batch(client, tenant) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert not limits(responses[0])
    warnings = [r for r in caplog.records if r.name == "api.rate_limits"]
    assert len(warnings) == 1  # then Redis is left alone for a moment
    assert "rate limiter unavailable" in warnings[0].getMessage()
    assert tenant.key not in caplog.text and "ratelimit:" not in caplog.text


def test_fails_open_when_redis_never_answers(
    make_client: MakeClient, tenant: TenantKey, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # accepts, never answers
        client = make_client(
            rate_limit_redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            rate_limit_timeout_s=0.1,
            rate_limit_batch_per_s=0.01,
            rate_limit_batch_burst=1,
        )
        with caplog.at_level(logging.WARNING, logger="api.rate_limits"):
            responses = [create_batch(client, tenant) for _ in range(2)]
    assert [r.status_code for r in responses] == [201, 201]
    assert "rate limiter unavailable (TimeoutError)" in caplog.text


def test_the_operator_sets_overrides_and_bad_ones_are_refused(
    make_client: MakeClient, tenant: TenantKey
) -> None:
    admin = {"Authorization": "Bearer adm_" + "r" * 40}
    client = make_client(
        admin_api_key=SecretStr("adm_" + "r" * 40),
        rate_limit_batch_per_s=0.01,
        rate_limit_batch_burst=1,
    )
    url = f"/v1/admin/tenants/{tenant.tenant_id}/config"
    bad = {"rate_limits": {"batch": {"per_s": -1, "burst": 0}, "everything": {}}}
    refused = client.put(url, json=bad, headers=admin)
    assert refused.status_code == 422 and refused.json is not None
    assert refused.json["code"] == "invalid_config"
    assert {"rate_limits.batch.per_s", "rate_limits.batch.burst", "rate_limits.everything"} <= {
        e["loc"] for e in refused.json["errors"]
    }
    good = {"rate_limits": {"batch": {"per_s": 0.01, "burst": 2}}}
    assert client.put(url, json=good, headers=admin).status_code == 200
    assert [create_batch(client, tenant).status_code for _ in range(3)] == [201, 201, 429]
