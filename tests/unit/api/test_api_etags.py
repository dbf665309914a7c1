"""Conditional polling of `GET /v1/jobs/{id}`: a strong ETag, 304 on If-None-Match, Retry-After kept."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from pipeline.db import jobs as job_repo
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import Stage
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostTranscript


def get(
    client: FlaskClient, tenant: TenantKey, job_id: str, etag: str | None = None
) -> TestResponse:
    headers = {**tenant.headers, **({"If-None-Match": etag} if etag else {})}
    return client.get(f"/v1/jobs/{job_id}", headers=headers)


def test_the_status_document_has_a_strong_etag(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    first, second = get(client, tenant, job_id), get(client, tenant, job_id)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert second.headers["ETag"] == etag  # same document, same validator
    assert "no-cache" in first.headers["Cache-Control"]


def test_a_matching_if_none_match_is_304_without_a_body(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    etag = get(client, tenant, job_id).headers["ETag"]
    cached = get(client, tenant, job_id, etag)
    assert cached.status_code == 304
    assert cached.get_data() == b""
    assert cached.headers["ETag"] == etag
    assert cached.headers["Retry-After"].isdigit()  # still running: keep polling politely


@pytest.mark.parametrize(
    "form", ["{etag}", "W/{etag}", '"other", {etag}', "*"], ids=["exact", "weak", "list", "star"]
)
def test_if_none_match_uses_the_weak_comparison(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript, form: str
) -> None:
    job_id = post_transcript(tenant)["id"]
    etag = get(client, tenant, job_id).headers["ETag"]
    assert get(client, tenant, job_id, form.format(etag=etag)).status_code == 304


def test_a_change_of_state_changes_the_etag(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    sessions: sessionmaker[Session],
) -> None:
    job_id = post_transcript(tenant)["id"]
    old = get(client, tenant, job_id).headers["ETag"]
    with transaction(sessions) as session:
        job = job_repo.lock_job(session, job_id)
        assert job is not None
        job_repo.begin_stage(session, job, Stage.TRANSCRIBE, max_attempts=3)
    fresh = get(client, tenant, job_id, old)
    assert fresh.status_code == 200
    assert fresh.json["status"] == "transcribing"
    assert fresh.headers["ETag"] != old
    assert get(client, tenant, job_id, '"something-else"').status_code == 200


def test_a_terminal_job_has_no_retry_after_on_304(
    client: FlaskClient,
    tenant: TenantKey,
    post_transcript: PostTranscript,
    sessions: sessionmaker[Session],
) -> None:
    job_id = post_transcript(tenant)["id"]
    with transaction(sessions) as session:
        job = job_repo.lock_job(session, job_id)
        assert job is not None
        job_repo.fail_job(session, job, None, code="stuck", message="test", settings=Settings())
    etag = get(client, tenant, job_id).headers["ETag"]
    cached = get(client, tenant, job_id, etag)
    assert cached.status_code == 304
    assert "Retry-After" not in cached.headers


def test_another_tenant_gets_404_not_304(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job_id = post_transcript(tenant)["id"]
    etag = get(client, tenant, job_id).headers["ETag"]
    for guess in (etag, "*"):
        response = get(client, other_tenant, job_id, guess)
        assert response.status_code == 404
        assert "ETag" not in response.headers
