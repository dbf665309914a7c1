"""Fixtures for the API tests: the app on real PostgreSQL, Redis and moto's S3 server, no worker.

Without a worker every accepted job simply stays `queued`. What a test left behind is read straight
from the database and the bucket, never through the API under test.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from api.state import AppState
from pipeline.db.models import Job
from pipeline.settings import Settings, get_settings
from tests.conftest import BUCKET, TenantKey
from tests.support.services import postgres_database

TEXT_TRANSCRIPT = "Agent: Thank you for calling, how can I help?\nCustomer: My bill is wrong."

PostAudio = Callable[..., TestResponse]
PostTranscript = Callable[..., dict[str, Any]]


@pytest.fixture
def app_state(app: Flask) -> AppState:
    value: AppState = app.extensions["callintel"]
    return value


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def stored_keys(settings: Settings, s3_client: Any) -> Callable[[str], list[str]]:
    """Every object (and unfinished multipart upload) stored for a tenant, straight from S3."""
    root = settings.storage_url.removeprefix(f"s3://{BUCKET}/").strip("/")

    def keys(tenant_id: str) -> list[str]:
        prefix = f"{root}/tenants/{tenant_id}/"
        objects = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        uploads = s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
        found = [o["Key"] for o in objects] + [f"{u['Key']} (unfinished)" for u in uploads]
        return sorted(k.removeprefix(f"{root}/") for k in found)

    return keys


@pytest.fixture
def job_rows(sessions: sessionmaker[Session]) -> Callable[[str], list[Job]]:
    """A tenant's job rows, straight from the database."""

    def rows(tenant_id: str) -> list[Job]:
        with sessions() as session:
            return list(session.scalars(select(Job).where(Job.tenant_id == tenant_id)))

    return rows


@pytest.fixture
def post_audio(client: FlaskClient) -> PostAudio:
    """POST a recording as multipart, encoded here: the test client's own form encoding spools
    big bodies to a temporary file it never closes."""

    def post(
        tenant: TenantKey,
        data: bytes,
        filename: str = "call.wav",
        *,
        field: str = "file",
        before: dict[str, str] | None = None,
        after: dict[str, str] | None = None,
    ) -> TestResponse:
        fields: list[tuple[str, Any]] = list((before or {}).items())
        fields.append((field, FileStorage(io.BytesIO(data), filename)))
        fields += list((after or {}).items())
        boundary, body = encode_multipart(MultiDict(fields))
        content_type = f"multipart/form-data; boundary={boundary}"
        return client.post("/v1/jobs", data=body, headers=tenant.headers, content_type=content_type)

    return post


@pytest.fixture
def post_transcript(client: FlaskClient) -> PostTranscript:
    """Submit a small text transcript and return the accepted job's status document."""

    def post(tenant: TenantKey, **options: Any) -> dict[str, Any]:
        body = {"transcript": TEXT_TRANSCRIPT, **options}
        response = client.post("/v1/jobs", json=body, headers=tenant.headers)
        assert response.status_code == 202, response.json
        job: dict[str, Any] = response.json  # type: ignore[assignment]
        return job

    return post


@pytest.fixture
def empty_database_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty PostgreSQL database that DATABASE_URL names (the CLI reads its settings)."""
    with postgres_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        get_settings.cache_clear()
