"""`Idempotency-Key` on `POST /v1/jobs`: replay, conflicts, in-flight retries, expiry, concurrency.

What was created is always counted straight from the database. Requests that must really overlap
go through a threaded HTTP server on 127.0.0.1 rather than the test client.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from api import create_app
from pipeline.db import idempotency
from pipeline.db.idempotency_models import IdempotencyKey
from pipeline.db.models import Job, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from tests.conftest import SAMPLES, TenantKey
from tests.support.live_server import live_server
from tests.support.services import free_port
from tests.unit.api.conftest import TEXT_TRANSCRIPT

Rows = Callable[[str], list[Job]]
Keys = Callable[[str], list[str]]
WAV_HEAD = (SAMPLES / "stereo.wav").read_bytes()[:44]
DUPLICATES = 20


def wav(filler: bytes = b"\x01", size: int = 64 * 1024) -> bytes:
    """A small file that sniffs as WAV; `filler` makes its content (and sha256) distinct."""
    return WAV_HEAD + filler * (size // len(filler))


def multipart(data: bytes, **fields: str) -> tuple[str, bytes]:
    """(content type, body) of an upload with form fields after the file."""
    parts: list[tuple[str, Any]] = [("file", FileStorage(io.BytesIO(data), "call.wav"))]
    parts += list(fields.items())
    boundary, body = encode_multipart(MultiDict(parts))
    return f"multipart/form-data; boundary={boundary}", body


def keyed(tenant: TenantKey, key: str) -> dict[str, str]:
    return {**tenant.headers, "Idempotency-Key": key}


def new_key() -> str:
    return f"retry-{uuid.uuid4()}"


@pytest.fixture
def key_rows(sessions: sessionmaker[Session]) -> Callable[[str], list[IdempotencyKey]]:
    def rows(tenant_id: str) -> list[IdempotencyKey]:
        with sessions() as session:
            query = select(IdempotencyKey).where(IdempotencyKey.tenant_id == tenant_id)
            return list(session.scalars(query))

    return rows


def post_json(client: FlaskClient, tenant: TenantKey, key: str, body: Any) -> TestResponse:
    return client.post("/v1/jobs", json=body, headers=keyed(tenant, key))


def post_upload(
    client: FlaskClient, tenant: TenantKey, key: str, data: bytes, **fields: str
) -> TestResponse:
    content_type, body = multipart(data, **fields)
    return client.post("/v1/jobs", data=body, content_type=content_type, headers=keyed(tenant, key))


def assert_replay_of(first: TestResponse, again: TestResponse) -> None:
    assert again.status_code == first.status_code
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers.get("Location") == first.headers.get("Location")
    assert "Idempotent-Replayed" not in first.headers


def assert_problem(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.get_data())
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["code"] == code
    assert "Idempotent-Replayed" not in response.headers


# --- replay ---------------------------------------------------------------------------------


def test_a_retry_replays_the_first_response_and_creates_nothing(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, key_rows: Any
) -> None:
    key = new_key()
    first = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "external_id": "c-1"})
    assert first.status_code == 202, first.json
    again = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "external_id": "c-1"})
    assert_replay_of(first, again)
    assert [j.id for j in job_rows(tenant.tenant_id)] == [first.json["id"]]
    [row] = key_rows(tenant.tenant_id)
    assert (row.key, row.state, row.status_code) == (key, "completed", 202)
    assert row.expires_at - row.created_at >= timedelta(hours=24)


def test_json_bodies_are_compared_by_value_not_by_bytes(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows
) -> None:
    key, body = new_key(), {"transcript": TEXT_TRANSCRIPT, "call_type": "x"}
    compact = json.dumps(body, separators=(",", ":"))
    spread = json.dumps(dict(reversed(body.items())), indent=2)
    assert compact != spread
    first = client.post(
        "/v1/jobs", data=compact, content_type="application/json", headers=keyed(tenant, key)
    )
    assert first.status_code == 202, first.json
    again = client.post(
        "/v1/jobs", data=spread, content_type="application/json", headers=keyed(tenant, key)
    )
    assert_replay_of(first, again)
    assert len(job_rows(tenant.tenant_id)) == 1


def test_the_same_key_with_a_different_body_is_422(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows
) -> None:
    key = new_key()
    first = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT})
    assert first.status_code == 202
    other = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "call_type": "sales"})
    assert_problem(other, 422, "idempotency_conflict")
    elsewhere = client.post(
        "/v1/jobs?x=1", json={"transcript": TEXT_TRANSCRIPT}, headers=keyed(tenant, key)
    )
    assert_problem(elsewhere, 422, "idempotency_conflict")
    assert len(job_rows(tenant.tenant_id)) == 1


def test_an_upload_retry_is_replayed_after_its_file_is_compared(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    key, data = new_key(), wav(b"\x02")
    first = post_upload(client, tenant, key, data, external_id="crm-9")
    assert first.status_code == 202, first.json
    assert_replay_of(first, post_upload(client, tenant, key, data, external_id="crm-9"))
    other_file = post_upload(client, tenant, key, wav(b"\x03"), external_id="crm-9")
    assert_problem(other_file, 422, "idempotency_conflict")
    other_field = post_upload(client, tenant, key, data, external_id="crm-10")
    assert_problem(other_field, 422, "idempotency_conflict")
    as_json = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT})
    assert_problem(as_json, 422, "idempotency_conflict")
    assert [j.id for j in job_rows(tenant.tenant_id)] == [first.json["id"]]
    assert len(stored_keys(tenant.tenant_id)) == 1  # retries were read, never stored


# --- what is stored, what is released ----------------------------------------------------------


def test_a_4xx_first_response_is_stored_and_replayed(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows
) -> None:
    key = new_key()
    first = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "extenal_id": "typo"})
    assert_problem(first, 422, "validation_error")
    again = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "extenal_id": "typo"})
    assert_replay_of(first, again)
    fixed = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT, "external_id": "typo"})
    assert_problem(fixed, 422, "idempotency_conflict")  # a corrected request needs a new key
    assert job_rows(tenant.tenant_id) == []


def test_an_upload_refused_after_it_was_read_is_replayed(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    key, data = new_key(), wav(b"\x04")
    first = post_upload(client, tenant, key, data, channel_map="agent,supervisor")
    assert_problem(first, 422, "validation_error")
    assert_replay_of(first, post_upload(client, tenant, key, data, channel_map="agent,supervisor"))
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


def test_an_upload_refused_before_it_was_read_releases_the_key(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, key_rows: Any
) -> None:
    """415 comes from the first bytes: no fingerprint exists to compare a retry with."""
    key = new_key()
    refused = post_upload(client, tenant, key, b"%PDF-1.7 not audio" * 100)
    assert_problem(refused, 415, "unsupported_media_type")
    assert key_rows(tenant.tenant_id) == []
    accepted = post_upload(client, tenant, key, wav(b"\x05"))
    assert accepted.status_code == 202, accepted.json
    assert "Idempotent-Replayed" not in accepted.headers
    assert len(job_rows(tenant.tenant_id)) == 1


@pytest.fixture
def app_without_storage(settings: Settings) -> Iterator[Flask]:
    """The app with its S3 endpoint on a closed port; the database is up."""
    down = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    app = create_app({"TESTING": True, "SETTINGS": down})
    yield app
    app.extensions["callintel"].engine.dispose()


def test_a_server_error_releases_the_key_so_a_retry_runs(
    app_without_storage: Flask,
    client: FlaskClient,
    tenant: TenantKey,
    job_rows: Rows,
    key_rows: Any,
) -> None:
    key, body = new_key(), {"transcript": TEXT_TRANSCRIPT}
    failed = app_without_storage.test_client().post(
        "/v1/jobs", json=body, headers=keyed(tenant, key)
    )
    assert_problem(failed, 503, "service_unavailable")
    assert key_rows(tenant.tenant_id) == [] and job_rows(tenant.tenant_id) == []
    retried = post_json(client, tenant, key, body)
    assert retried.status_code == 202, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert len(job_rows(tenant.tenant_id)) == 1


# --- scope and lifetime -------------------------------------------------------------------------


def test_keys_are_scoped_per_tenant(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, job_rows: Rows
) -> None:
    key, body = new_key(), {"transcript": TEXT_TRANSCRIPT}
    mine, theirs = post_json(client, tenant, key, body), post_json(client, other_tenant, key, body)
    assert mine.status_code == theirs.status_code == 202
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json["id"] != theirs.json["id"]
    assert len(job_rows(tenant.tenant_id)) == len(job_rows(other_tenant.tenant_id)) == 1


def test_an_expired_key_is_not_replayed_and_is_purged(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    job_rows: Rows,
    key_rows: Any,
) -> None:
    key, body = new_key(), {"transcript": TEXT_TRANSCRIPT}
    assert post_json(client, tenant, key, body).status_code == 202
    expire(sessions, tenant.tenant_id)
    again = post_json(client, tenant, key, body)
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    assert len(job_rows(tenant.tenant_id)) == 2

    expire(sessions, tenant.tenant_id)
    with transaction(sessions) as session:
        assert idempotency.purge_expired(session, now=utcnow()) >= 1
    assert key_rows(tenant.tenant_id) == []


def expire(sessions: sessionmaker[Session], tenant_id: str) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.tenant_id == tenant_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_an_abandoned_in_flight_key_is_taken_over(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    settings: Settings,
    job_rows: Rows,
) -> None:
    """A process killed mid-request never releases its key; once stale, the key is free again."""
    key, body = new_key(), {"transcript": TEXT_TRANSCRIPT}
    held = idempotency.KeyRequest(tenant.tenant_id, key, "POST", "/v1/jobs", None)
    claimed = idempotency.claim(sessions, held, ttl_s=86400, stale_after_s=3600)
    assert isinstance(claimed, idempotency.Claimed)
    assert_problem(post_json(client, tenant, key, body), 409, "idempotency_in_flight")

    stale = utcnow() - timedelta(seconds=settings.idempotency_stale_after_s + 1)
    with transaction(sessions) as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claimed.claim_id)
            .values(created_at=stale)
        )
    taken_over = post_json(client, tenant, key, body)
    assert taken_over.status_code == 202, taken_over.json
    assert len(job_rows(tenant.tenant_id)) == 1


INVALID_KEYS = {
    "empty": "",
    "too-long": "k" * 256,
    "non-ascii": "clé-1",
    "control": "a\x7fb",
    "tab": "a\tb",
}


@pytest.mark.parametrize("key", INVALID_KEYS.values(), ids=INVALID_KEYS.keys())
def test_invalid_keys_are_400(
    client: FlaskClient, tenant: TenantKey, key: str, job_rows: Rows, key_rows: Any
) -> None:
    response = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT})
    assert_problem(response, 400, "invalid_idempotency_key")
    assert job_rows(tenant.tenant_id) == [] and key_rows(tenant.tenant_id) == []


def test_the_longest_valid_key_is_accepted(client: FlaskClient, tenant: TenantKey) -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F)) * 3  # 282 printable characters
    key = key[:255]
    first = post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT})
    assert first.status_code == 202, first.json
    assert_replay_of(first, post_json(client, tenant, key, {"transcript": TEXT_TRANSCRIPT}))


def test_without_a_key_every_post_creates_a_job(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, key_rows: Any
) -> None:
    for _ in range(2):
        response = client.post(
            "/v1/jobs", json={"transcript": TEXT_TRANSCRIPT}, headers=tenant.headers
        )
        assert response.status_code == 202
    assert len(job_rows(tenant.tenant_id)) == 2 and key_rows(tenant.tenant_id) == []


def test_an_unauthenticated_request_with_a_key_is_401(client: FlaskClient) -> None:
    response = client.post(
        "/v1/jobs", json={"transcript": TEXT_TRANSCRIPT}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(response, 401, "unauthenticated")


# --- real concurrency -----------------------------------------------------------------------------


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    with live_server(app) as url:
        yield url


def wait_until(condition: Callable[[], bool], *, timeout: float = 30) -> None:
    """Poll `condition`; the timeout is only a safety net against a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_a_retry_while_the_first_upload_is_in_flight_is_409(
    base_url: str, tenant: TenantKey, job_rows: Rows, key_rows: Any
) -> None:
    key, data = new_key(), wav(b"\x06", size=512 * 1024)
    content_type, body = multipart(data)
    url = urlsplit(base_url)
    first = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        first.putrequest("POST", "/v1/jobs")
        for name, value in {**keyed(tenant, key), "Content-Type": content_type}.items():
            first.putheader(name, value)
        first.putheader("Content-Length", str(len(body)))
        first.endheaders()
        first.send(body[: len(body) // 2])  # the rest is held back: the request stays in flight
        wait_until(lambda: len(key_rows(tenant.tenant_id)) == 1)

        retry = requests.post(
            f"{base_url}/v1/jobs",
            json={"transcript": TEXT_TRANSCRIPT},
            headers=keyed(tenant, key),
            timeout=30,
        )
        assert retry.status_code == 409, retry.text
        assert retry.headers["Content-Type"] == "application/problem+json"
        assert retry.json()["code"] == "idempotency_in_flight"
        assert retry.headers["Retry-After"] == "1"
        assert job_rows(tenant.tenant_id) == []

        first.send(body[len(body) // 2 :])
        answer = first.getresponse()
        accepted = answer.read()
        assert answer.status == 202, accepted
    finally:
        first.close()

    replay = requests.post(
        f"{base_url}/v1/jobs",
        data=body,
        headers={**keyed(tenant, key), "Content-Type": content_type},
        timeout=30,
    )
    assert (replay.status_code, replay.content) == (202, accepted)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(job_rows(tenant.tenant_id)) == 1


@pytest.mark.parametrize("kind", ["json", "upload"])
def test_concurrent_duplicates_create_exactly_one_job(
    base_url: str, tenant: TenantKey, kind: str, job_rows: Rows, key_rows: Any
) -> None:
    key = new_key()
    if kind == "json":
        content_type, body = "application/json", b'{"transcript": "Agent: hi\\nCustomer: hello"}'
    else:
        content_type, body = multipart(wav(b"\x07", size=256 * 1024), external_id="crm-20")
    headers = {**keyed(tenant, key), "Content-Type": content_type}
    start = threading.Barrier(DUPLICATES)

    def post(_: int) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(f"{base_url}/v1/jobs", data=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(DUPLICATES) as pool:
        responses = list(pool.map(post, range(DUPLICATES)))

    assert len(job_rows(tenant.tenant_id)) == 1
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {202, 409}, [(r.status_code, r.text) for r in responses]
    accepted = [r for r in responses if r.status_code == 202]
    originals = [r for r in accepted if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    assert {r.content for r in accepted} == {originals[0].content}
    assert all(
        r.json()["code"] == "idempotency_in_flight" for r in responses if r.status_code == 409
    )
    [row] = key_rows(tenant.tenant_id)
    assert row.state == "completed"
