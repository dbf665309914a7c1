"""`/v1/webhooks`: endpoint CRUD, secret rotation, URL validation (SSRF), tenant isolation, the
delivery log, redelivery, test pings, and a job's `callback_url` at intake. The app runs with the
production URL policy (https only, no loopback) and a DNS the test controls."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from api import create_app
from pipeline.adapters.webhook_http import HttpWebhookSender
from pipeline.db.models import Job, utcnow
from pipeline.settings import Settings
from tests.conftest import TenantKey
from tests.support.receiver import Reply, receiver
from tests.support.webhooks import (
    Dns,
    add_endpoint,
    close_all_open,
    deliveries_of,
    fast_settings,
    finish_job,
    new_job,
    pump,
    settled,
)
from tests.unit.api.conftest import PostAudio

PUBLIC = "93.184.216.34"
URL = "https://hooks.acme.test/callintel"
DNS = Dns(
    {
        "hooks.acme.test": [PUBLIC],
        "other.acme.test": ["2606:4700:4700::1111"],
        "internal.acme.test": ["10.0.0.5"],
        "split.acme.test": [PUBLIC, "127.0.0.1"],
    }
)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SETTINGS": settings, "WEBHOOK_RESOLVER": DNS})
    yield app
    app.extensions["callintel"].engine.dispose()


@pytest.fixture(autouse=True)
def quiet_deliveries(sessions: sessionmaker[Session]) -> Iterator[None]:
    close_all_open(sessions)
    yield
    close_all_open(sessions)


@pytest.fixture
def create(client: FlaskClient) -> Callable[..., TestResponse]:
    def post(tenant: TenantKey, **body: Any) -> TestResponse:
        return client.post(
            "/v1/webhooks/endpoints", json={"url": URL, **body}, headers=tenant.headers
        )

    return post


def problem(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["code"] == code


def test_create_shows_the_secret_once(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse]
) -> None:
    response = create(tenant, description="billing", event_types=["job.completed"])
    assert response.status_code == 201, response.json
    created = response.json
    assert created is not None
    assert response.headers["Location"] == f"/v1/webhooks/endpoints/{created['id']}"
    assert created["id"].startswith("whe_") and created["object"] == "webhook_endpoint"
    assert created["secret"].startswith("whsec_")
    assert 24 <= len(base64.b64decode(created["secret"].removeprefix("whsec_"))) <= 64
    assert (created["url"], created["enabled"], created["event_types"]) == (
        URL, True, ["job.completed"]
    )  # fmt: skip
    shown = client.get(response.headers["Location"], headers=tenant.headers).json
    assert shown is not None and "secret" not in shown
    listed = client.get("/v1/webhooks/endpoints", headers=tenant.headers).json
    assert listed is not None and [e["id"] for e in listed["data"]] == [created["id"]]
    assert all("secret" not in e for e in listed["data"])


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.acme.test/x", "unsafe_webhook_url"),
        ("https://127.0.0.1/x", "unsafe_webhook_url"),
        ("https://2130706433/x", "unsafe_webhook_url"),
        ("https://0x7f000001/x", "unsafe_webhook_url"),
        ("https://[::ffff:169.254.169.254]/x", "unsafe_webhook_url"),
        ("https://localhost/x", "unsafe_webhook_url"),
        ("https://internal.acme.test/x", "unsafe_webhook_url"),
        ("https://split.acme.test/x", "unsafe_webhook_url"),
        ("https://100.64.1.1/x", "unsafe_webhook_url"),
        ("https://nxdomain.acme.test/x", "invalid_webhook_url"),
        ("ftp://hooks.acme.test/x", "invalid_webhook_url"),
        ("https://user:pw@hooks.acme.test/x", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
    ],
)
def test_unsafe_or_invalid_urls_are_refused(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse], url: str, code: str
) -> None:
    problem(create(tenant, url=url), 422, code)
    listed = client.get("/v1/webhooks/endpoints", headers=tenant.headers).json
    assert listed is not None and listed["data"] == []


def test_bad_bodies_are_problems(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse]
) -> None:
    problem(create(tenant, event_types=["job.exploded"]), 422, "validation_error")
    problem(create(tenant, colour="red"), 422, "validation_error")
    problem(create(tenant, description="x" * 501), 422, "validation_error")
    path = "/v1/webhooks/endpoints"
    problem(client.post(path, data="url=x", headers=tenant.headers), 415, "unsupported_media_type")
    problem(
        client.post(path, data="{", headers=tenant.headers, content_type="application/json"),
        400,
        "invalid_request",
    )
    problem(client.post(path, json={"url": URL}), 401, "unauthenticated")


def test_update_changes_what_is_given_and_revalidates_the_url(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse]
) -> None:
    endpoint = create(tenant).json
    assert endpoint is not None
    path, headers = f"/v1/webhooks/endpoints/{endpoint['id']}", tenant.headers
    changed = client.patch(path, json={"url": "https://other.acme.test/new", "description": "v2", "event_types": ["job.failed"]}, headers=headers)  # fmt: skip
    assert changed.status_code == 200, changed.json
    assert changed.json is not None
    assert (changed.json["url"], changed.json["description"], changed.json["event_types"]) == (
        "https://other.acme.test/new", "v2", ["job.failed"]
    )  # fmt: skip
    problem(
        client.patch(path, json={"url": "https://10.1.1.1/"}, headers=headers),
        422,
        "unsafe_webhook_url",
    )
    problem(
        client.patch(path, json={"secret": "whsec_mine"}, headers=headers), 422, "validation_error"
    )
    off = client.patch(path, json={"enabled": False}, headers=headers).json
    assert off is not None
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled by the tenant")
    on = client.patch(path, json={"enabled": True}, headers=headers).json
    assert on is not None and (on["enabled"], on["disabled_reason"]) == (True, None)
    assert on["url"] == "https://other.acme.test/new"  # the refused change changed nothing


def test_delete(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse]
) -> None:
    endpoint = create(tenant).json
    assert endpoint is not None
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    assert client.delete(path, headers=tenant.headers).status_code == 204
    problem(client.get(path, headers=tenant.headers), 404, "not_found")
    problem(client.delete(path, headers=tenant.headers), 404, "not_found")


def test_rotation_returns_a_new_secret_and_the_overlap(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse], settings: Settings
) -> None:
    endpoint = create(tenant).json
    assert endpoint is not None
    rotated = client.post(
        f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=tenant.headers
    )
    assert rotated.status_code == 200 and rotated.json is not None
    assert (
        rotated.json["secret"].startswith("whsec_") and rotated.json["secret"] != endpoint["secret"]
    )
    until = rotated.json["previous_secret_expires_at"]
    shown = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers).json
    assert shown is not None and shown["previous_secret_expires_at"] == until
    from datetime import datetime

    expires = datetime.fromisoformat(until)
    overlap = timedelta(seconds=settings.webhook_secret_overlap_s)
    assert utcnow() + overlap - timedelta(minutes=1) < expires <= utcnow() + overlap


def test_another_tenants_endpoints_and_deliveries_are_indistinguishable_from_missing_ones(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    create: Callable[..., TestResponse],
) -> None:
    endpoint = create(tenant).json
    assert endpoint is not None
    ping = client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=tenant.headers).json
    assert ping is not None
    missing_endpoint, missing_delivery = "whe_" + "0" * 26, "msg_" + "0" * 26
    pairs = [
        ("get", "/v1/webhooks/endpoints/{}", endpoint["id"], missing_endpoint),
        ("patch", "/v1/webhooks/endpoints/{}", endpoint["id"], missing_endpoint),
        ("delete", "/v1/webhooks/endpoints/{}", endpoint["id"], missing_endpoint),
        ("post", "/v1/webhooks/endpoints/{}/rotate-secret", endpoint["id"], missing_endpoint),
        ("post", "/v1/webhooks/endpoints/{}/test", endpoint["id"], missing_endpoint),
        ("get", "/v1/webhooks/deliveries/{}", ping["id"], missing_delivery),
        ("post", "/v1/webhooks/deliveries/{}/redeliver", ping["id"], missing_delivery),
    ]
    for method, template, theirs, missing in pairs:
        call = getattr(client, method)
        kwargs: dict[str, Any] = {"headers": other_tenant.headers}
        if method == "patch":
            kwargs["json"] = {"description": "mine now"}
        foreign, absent = (
            call(template.format(theirs), **kwargs),
            call(template.format(missing), **kwargs),
        )
        assert foreign.status_code == 404, (method, template)
        assert foreign.get_data() == absent.get_data()
    for path in ("/v1/webhooks/endpoints", f"/v1/webhooks/deliveries?endpoint_id={endpoint['id']}"):
        listed = client.get(path, headers=other_tenant.headers).json
        assert listed is not None and listed["data"] == []
    still = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers).json
    assert still is not None and still["description"] == ""


def test_the_test_ping_is_queued_and_logged(
    client: FlaskClient, tenant: TenantKey, create: Callable[..., TestResponse]
) -> None:
    endpoint = create(tenant).json
    assert endpoint is not None
    ping = client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=tenant.headers)
    assert ping.status_code == 202 and ping.json is not None
    assert (ping.json["event_type"], ping.json["state"], ping.json["endpoint_id"]) == (
        "webhook.test", "pending", endpoint["id"]
    )  # fmt: skip
    assert ping.json["id"].startswith("msg_")
    log = client.get(
        f"/v1/webhooks/deliveries?endpoint_id={endpoint['id']}", headers=tenant.headers
    ).json
    assert log is not None and [d["id"] for d in log["data"]] == [ping.json["id"]]


def test_the_delivery_log_shows_attempts_and_redeliver_reuses_the_webhook_id(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    fast = fast_settings(settings)
    sender = HttpWebhookSender.from_settings(fast)
    with receiver(script=[Reply(500, body=b"try later")]) as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, fast, sender, until=settled(sessions, row.id))
        log = client.get(f"/v1/webhooks/deliveries?job_id={job_id}", headers=tenant.headers).json
        assert log is not None
        (shown,) = log["data"]
        assert (shown["id"], shown["state"], shown["attempts"], shown["last_status"]) == (
            row.id, "succeeded", 2, 200
        )  # fmt: skip
        assert [a["status_code"] for a in shown["attempt_log"]] == [500, 200]
        assert shown["attempt_log"][0]["response_excerpt"] == "try later"
        assert all(a["latency_ms"] is not None for a in shown["attempt_log"])

        again = client.post(f"/v1/webhooks/deliveries/{row.id}/redeliver", headers=tenant.headers)
        assert again.status_code == 202 and again.json is not None
        assert (again.json["id"], again.json["state"]) == (row.id, "pending")
        pump(sessions, fast, sender, until=lambda: len(hook.received) == 3)
    assert {r.webhook_id for r in hook.received} == {row.id}
    client.patch(
        f"/v1/webhooks/endpoints/{endpoint.id}", json={"enabled": False}, headers=tenant.headers
    )
    refused = client.post(f"/v1/webhooks/deliveries/{row.id}/redeliver", headers=tenant.headers)
    problem(refused, 409, "cannot_redeliver")


def test_bad_log_queries(client: FlaskClient, tenant: TenantKey) -> None:
    for query in ("job_id=../../etc", "endpoint_id=x", "limit=0", "limit=101", "limit=ten"):
        problem(
            client.get(f"/v1/webhooks/deliveries?{query}", headers=tenant.headers),
            400,
            "invalid_request",
        )


def test_callback_url_needs_a_callback_secret_and_a_safe_url(
    client: FlaskClient,
    tenant: TenantKey,
    job_rows: Callable[[str], list[Job]],
    stored_keys: Callable[[str], list[str]],
) -> None:
    body = {"transcript": "Agent: Hello.\nCustomer: Hi.", "callback_url": f"{URL}/job"}
    problem(
        client.post("/v1/jobs", json=body, headers=tenant.headers), 422, "callback_secret_missing"
    )

    first = client.post("/v1/webhooks/callback-secret", headers=tenant.headers)
    assert first.status_code == 201 and first.json is not None
    assert (
        first.json["secret"].startswith("whsec_")
        and first.json["previous_secret_expires_at"] is None
    )
    second = client.post("/v1/webhooks/callback-secret", headers=tenant.headers)
    assert second.status_code == 200 and second.json is not None
    assert (
        second.json["secret"] != first.json["secret"] and second.json["previous_secret_expires_at"]
    )

    accepted = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert accepted.status_code == 202, accepted.json
    for unsafe in (
        "https://127.0.0.1/cb",
        "https://internal.acme.test/cb",
        "http://hooks.acme.test/cb",
    ):
        refused = client.post(
            "/v1/jobs", json={**body, "callback_url": unsafe}, headers=tenant.headers
        )
        problem(refused, 422, "unsafe_webhook_url")
    (job,) = job_rows(tenant.tenant_id)
    assert job.callback_url == f"{URL}/job"
    assert len(stored_keys(tenant.tenant_id)) == 1  # the refused submissions left nothing behind


def test_callback_url_as_a_multipart_field(
    client: FlaskClient,
    tenant: TenantKey,
    post_audio: PostAudio,
    job_rows: Callable[[str], list[Job]],
) -> None:
    from tests.conftest import SAMPLES

    client.post("/v1/webhooks/callback-secret", headers=tenant.headers)
    audio = (SAMPLES / "stereo.wav").read_bytes()
    problem(
        post_audio(tenant, audio, after={"callback_url": "https://0x7f000001/cb"}),
        422,
        "unsafe_webhook_url",
    )
    accepted = post_audio(tenant, audio, after={"callback_url": URL})
    assert accepted.status_code == 202, accepted.json
    assert [j.callback_url for j in job_rows(tenant.tenant_id)] == [URL]


def test_creating_posts_honour_idempotency_keys(client: FlaskClient, tenant: TenantKey) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "create-endpoint-1"}
    first = client.post("/v1/webhooks/endpoints", json={"url": URL}, headers=headers)
    again = client.post("/v1/webhooks/endpoints", json={"url": URL}, headers=headers)
    assert first.status_code == again.status_code
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json  # the same endpoint (and the same secret), not a second one
    listed = client.get("/v1/webhooks/endpoints", headers=tenant.headers).json
    assert listed is not None
    assert [e["id"] for e in listed["data"]] == [first.json["id"]]

    endpoint = first.json["id"]
    rotate = {**tenant.headers, "Idempotency-Key": "rotate-1"}
    one = client.post(f"/v1/webhooks/endpoints/{endpoint}/rotate-secret", headers=rotate)
    two = client.post(f"/v1/webhooks/endpoints/{endpoint}/rotate-secret", headers=rotate)
    assert one.json == two.json  # a retried rotation does not rotate twice
