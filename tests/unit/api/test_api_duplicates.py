"""The tenant option `dedupe`: the same audio (sha256) or `external_id` returns the existing job."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from pipeline.db import jobs as job_repo
from pipeline.db.models import Job, Tenant
from pipeline.db.session import transaction
from pipeline.settings import Settings
from tests.conftest import SAMPLES, TenantKey
from tests.support.live_server import live_server
from tests.unit.api.conftest import TEXT_TRANSCRIPT

Rows = Callable[[str], list[Job]]
Keys = Callable[[str], list[str]]
WAV_HEAD = (SAMPLES / "stereo.wav").read_bytes()[:44]
AUDIO = WAV_HEAD + b"\x11" * 32 * 1024
OTHER_AUDIO = WAV_HEAD + b"\x12" * 32 * 1024


def set_dedupe(sessions: sessionmaker[Session], tenant: TenantKey, mode: str) -> None:
    with transaction(sessions) as session:
        row = session.get(Tenant, tenant.tenant_id)
        assert row is not None
        row.config = {**row.config, "dedupe": mode}


def upload(client: FlaskClient, tenant: TenantKey, data: bytes, **fields: str) -> TestResponse:
    parts: list[tuple[str, Any]] = [("file", FileStorage(io.BytesIO(data), "call.wav"))]
    boundary, body = encode_multipart(MultiDict(parts + list(fields.items())))
    content_type = f"multipart/form-data; boundary={boundary}"
    return client.post("/v1/jobs", data=body, content_type=content_type, headers=tenant.headers)


def transcript(client: FlaskClient, tenant: TenantKey, **options: Any) -> TestResponse:
    body = {"transcript": TEXT_TRANSCRIPT, **options}
    return client.post("/v1/jobs", json=body, headers=tenant.headers)


def assert_duplicate_of(response: TestResponse, job_id: str) -> None:
    assert response.status_code == 200, response.json
    assert response.headers["Callintel-Duplicate-Of"] == job_id
    assert response.headers["Location"] == f"/v1/jobs/{job_id}"
    assert response.json is not None and response.json["id"] == job_id


def test_off_by_default_the_same_audio_makes_two_jobs(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows
) -> None:
    first, second = upload(client, tenant, AUDIO), upload(client, tenant, AUDIO)
    assert first.status_code == second.status_code == 202
    assert "Callintel-Duplicate-Of" not in second.headers
    assert len(job_rows(tenant.tenant_id)) == 2


def test_sha256_returns_the_existing_job_and_keeps_no_second_blob(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    set_dedupe(sessions, tenant, "sha256")
    first = upload(client, tenant, AUDIO, external_id="a")
    assert first.status_code == 202, first.json
    again = upload(client, tenant, AUDIO, external_id="b")  # same bytes, other metadata
    assert_duplicate_of(again, first.json["id"])
    other = upload(client, tenant, OTHER_AUDIO)
    assert other.status_code == 202, other.json
    assert len(job_rows(tenant.tenant_id)) == 2
    assert stored_keys(tenant.tenant_id) == sorted(
        f"tenants/{tenant.tenant_id}/jobs/{j}/input.wav"
        for j in (first.json["id"], other.json["id"])
    )


def test_sha256_also_matches_transcripts(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], job_rows: Rows
) -> None:
    set_dedupe(sessions, tenant, "sha256")
    first = transcript(client, tenant)
    assert first.status_code == 202
    assert_duplicate_of(transcript(client, tenant, external_id="other"), first.json["id"])
    assert len(job_rows(tenant.tenant_id)) == 1


def test_external_id_returns_the_existing_job(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    set_dedupe(sessions, tenant, "external_id")
    first = upload(client, tenant, AUDIO, external_id="crm-1")
    assert first.status_code == 202
    assert_duplicate_of(upload(client, tenant, OTHER_AUDIO, external_id="crm-1"), first.json["id"])
    assert_duplicate_of(transcript(client, tenant, external_id="crm-1"), first.json["id"])
    assert upload(client, tenant, AUDIO, external_id="crm-2").status_code == 202
    assert upload(client, tenant, AUDIO).status_code == 202  # no external_id: nothing to match
    assert len(job_rows(tenant.tenant_id)) == 3
    assert len(stored_keys(tenant.tenant_id)) == 3


def test_a_failed_job_is_not_a_duplicate(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], job_rows: Rows
) -> None:
    set_dedupe(sessions, tenant, "sha256")
    first = upload(client, tenant, AUDIO)
    with transaction(sessions) as session:
        job = job_repo.lock_job(session, first.json["id"])
        assert job is not None
        job_repo.fail_job(session, job, None, code="stuck", message="test", settings=Settings())
    retry = upload(client, tenant, AUDIO)
    assert retry.status_code == 202, retry.json
    assert retry.json["id"] != first.json["id"]
    assert len(job_rows(tenant.tenant_id)) == 2


def test_dedupe_is_per_tenant(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    sessions: sessionmaker[Session],
    job_rows: Rows,
) -> None:
    set_dedupe(sessions, tenant, "sha256")
    set_dedupe(sessions, other_tenant, "sha256")
    assert upload(client, tenant, AUDIO).status_code == 202
    theirs = upload(client, other_tenant, AUDIO)
    assert theirs.status_code == 202 and "Callintel-Duplicate-Of" not in theirs.headers
    assert len(job_rows(other_tenant.tenant_id)) == 1


def test_dedupe_off_creates_new_jobs(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], job_rows: Rows
) -> None:
    set_dedupe(sessions, tenant, "off")
    assert transcript(client, tenant, external_id="x").status_code == 202
    assert transcript(client, tenant, external_id="x").status_code == 202
    assert len(job_rows(tenant.tenant_id)) == 2


def test_a_stored_config_with_an_unknown_mode_is_refused_at_intake(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], job_rows: Rows
) -> None:
    # Written by hand past the admin API's validation: every stage would fail on it, so intake
    # refuses at once instead of accepting work that cannot finish.
    set_dedupe(sessions, tenant, "bogus")
    response = transcript(client, tenant, external_id="x")
    assert response.status_code == 409
    assert response.json is not None and response.json["code"] == "tenant_config_invalid"
    assert job_rows(tenant.tenant_id) == []


def test_a_duplicate_under_an_idempotency_key_is_replayed(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], job_rows: Rows
) -> None:
    set_dedupe(sessions, tenant, "external_id")
    first = transcript(client, tenant, external_id="crm-5")
    headers = {**tenant.headers, "Idempotency-Key": "dup-1"}
    body = {"transcript": TEXT_TRANSCRIPT, "external_id": "crm-5"}
    dup = client.post("/v1/jobs", json=body, headers=headers)
    assert_duplicate_of(dup, first.json["id"])
    again = client.post("/v1/jobs", json=body, headers=headers)
    assert_duplicate_of(again, first.json["id"])
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(job_rows(tenant.tenant_id)) == 1


def test_concurrent_submissions_of_the_same_audio_make_one_job(
    app: Flask,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    """The tenant row lock serialises the check: no two concurrent uploads both find nothing."""
    set_dedupe(sessions, tenant, "sha256")
    parts: list[tuple[str, Any]] = [("file", FileStorage(io.BytesIO(AUDIO), "call.wav"))]
    boundary, body = encode_multipart(MultiDict(parts))
    headers = {**tenant.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    start = threading.Barrier(10)

    with live_server(app) as base_url:

        def post(_: int) -> requests.Response:
            start.wait(timeout=30)
            return requests.post(f"{base_url}/v1/jobs", data=body, headers=headers, timeout=60)

        with ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(post, range(10)))

    [job] = job_rows(tenant.tenant_id)
    assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
    assert {r.json()["id"] for r in responses} == {job.id}
    assert stored_keys(tenant.tenant_id) == [f"tenants/{tenant.tenant_id}/jobs/{job.id}/input.wav"]
