"""`/v1/jobs` with JSON transcripts: submission, the status document, results and tenant isolation."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from api.state import AppState
from pipeline.db.models import Job, OutboxMessage
from pipeline.settings import Settings
from schemas.api import JobView
from schemas.common import STAGES
from tests.conftest import SAMPLES, TenantKey
from tests.unit.api.conftest import TEXT_TRANSCRIPT, PostTranscript

Keys = Callable[[str], list[str]]
Rows = Callable[[str], list[Job]]


def sample_json(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return body


def assert_accepted(response: Any) -> JobView:
    assert response.status_code == 202, response.json
    assert response.mimetype == "application/json"
    view = JobView.model_validate(response.json)
    assert response.headers["Location"] == f"/v1/jobs/{view.id}" == view.links["self"]
    assert view.links["result"] == f"/v1/jobs/{view.id}/result"
    assert view.status == "queued" and view.stage is None and view.progress == 0
    assert [(s.stage, s.state, s.attempts) for s in view.steps] == [
        (stage.value, "pending", 0) for stage in STAGES
    ]
    assert view.error is None and view.completed_at is None
    return view


# --- submitting a transcript -------------------------------------------------------------------


def test_submit_a_list_of_turns(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    app_state: AppState,
) -> None:
    body = sample_json("transcript.json")
    view = assert_accepted(client.post("/v1/jobs", json=body, headers=tenant.headers))
    assert view.input_kind == "transcript"
    assert view.external_id == body["external_id"]

    with sessions() as session:
        job = session.get(Job, view.id)
        assert job is not None and job.tenant_id == tenant.tenant_id
        envelope = job.envelope
        outbox = session.query(OutboxMessage).filter_by(job_id=view.id).all()
    assert [m.topic for m in outbox] == ["pipeline.start"]
    stored = app_state.blobs.get_bytes(envelope["input"]["blob_key"])
    assert envelope["input"]["blob_key"].startswith(f"tenants/{tenant.tenant_id}/jobs/{view.id}/")
    assert hashlib.sha256(stored).hexdigest() == envelope["input"]["sha256"]
    assert envelope["input"]["bytes"] == len(stored)
    assert json.loads(stored) == {"transcript": body["transcript"]}


def test_submit_plain_text(client: FlaskClient, tenant: TenantKey, app_state: AppState) -> None:
    text = (SAMPLES / "transcript.txt").read_text()
    response = client.post("/v1/jobs", json={"transcript": text}, headers=tenant.headers)
    view = assert_accepted(response)
    assert view.input_kind == "transcript"
    assert view.external_id is None and view.metadata == {}


def test_options_are_reflected(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    body = {
        "transcript": TEXT_TRANSCRIPT,
        "external_id": "crm-7",
        "agent_id": "agent-3",
        "call_type": "billing",
        "language": "en",
        "channel_map": {"0": "customer", "1": "agent"},
        "metadata": {"queue": "vip", "nested": {"a": [1, 2]}},
    }
    view = assert_accepted(client.post("/v1/jobs", json=body, headers=tenant.headers))
    assert (view.external_id, view.call_type) == ("crm-7", "billing")
    assert view.metadata == {"queue": "vip", "nested": {"a": [1, 2]}, "agent_id": "agent-3"}
    with sessions() as session:
        job = session.get(Job, view.id)
        assert job is not None
        options = job.envelope["options"]
    assert options == {
        "language": "en",
        "channel_map": {"0": "customer", "1": "agent"},
        "call_type": "billing",
        "transcriber": None,  # a transcript needs no speech provider
        "analyzer": "local",  # pinned at intake: the deployment's default
        "config_version": 0,  # the tenant's configuration version at intake
        "analysis_mode": None,  # one-off jobs are never analyzed through a batch API
    }


def test_charset_parameter_is_accepted(client: FlaskClient, tenant: TenantKey) -> None:
    response = client.post(
        "/v1/jobs",
        data=json.dumps({"transcript": TEXT_TRANSCRIPT}).encode(),
        headers=tenant.headers,
        content_type="application/json; charset=utf-8",
    )
    assert_accepted(response)


INVALID_BODIES = {
    "no-transcript": {"external_id": "x"},
    "transcript-number": {"transcript": 5},
    "turn-without-text": {"transcript": [{"speaker": "agent"}]},
    "turn-empty-text": {"transcript": [{"speaker": "agent", "text": ""}]},
    "turn-negative-time": {"transcript": [{"speaker": "agent", "text": "hi", "start_ms": -1}]},
    "unknown-field": {"transcript": TEXT_TRANSCRIPT, "extenal_id": "typo"},
    "unknown-turn-field": {"transcript": [{"speaker": "agent", "text": "hi", "sentiment": 1}]},
    "external-id-too-long": {"transcript": TEXT_TRANSCRIPT, "external_id": "x" * 201},
    "bad-role": {"transcript": TEXT_TRANSCRIPT, "channel_map": {"0": "supervisor"}},
    "negative-channel": {"transcript": TEXT_TRANSCRIPT, "channel_map": {"-1": "agent"}},
    "role-twice": {"transcript": TEXT_TRANSCRIPT, "channel_map": {"0": "agent", "3": "agent"}},
    "metadata-not-object": {"transcript": TEXT_TRANSCRIPT, "metadata": [1, 2]},
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_bodies_are_422_with_errors(
    client: FlaskClient, tenant: TenantKey, body: dict[str, Any], job_rows: Rows, stored_keys: Keys
) -> None:
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "validation_error"
    errors = response.json["errors"]
    assert errors and all(set(e) == {"loc", "msg", "type"} for e in errors)
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


def test_unknown_field_is_named(client: FlaskClient, tenant: TenantKey) -> None:
    body = {"transcript": TEXT_TRANSCRIPT, "extenal_id": "typo"}
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json["errors"]] == ["extenal_id"]
    assert response.json["errors"][0]["type"] == "extra_forbidden"


EMPTY_TRANSCRIPTS = {
    "empty-list": [],
    "empty-string": "",
    "blank-lines": "  \n\n   \n",
    "no-labels": "hello, I would like to talk about my bill",
    "label-without-text": "Agent:\nCustomer:",
}


@pytest.mark.parametrize("transcript", EMPTY_TRANSCRIPTS.values(), ids=EMPTY_TRANSCRIPTS.keys())
def test_empty_or_unlabelled_transcripts_are_422(
    client: FlaskClient, tenant: TenantKey, transcript: Any, job_rows: Rows, stored_keys: Keys
) -> None:
    response = client.post("/v1/jobs", json={"transcript": transcript}, headers=tenant.headers)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] in {"validation_error", "invalid_transcript"}
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


@pytest.mark.parametrize(
    "data", [b"{not json", b"", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe"], ids=repr
)
def test_a_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, tenant: TenantKey, data: bytes
) -> None:
    response = client.post(
        "/v1/jobs", data=data, headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "invalid_request"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_other_content_types_are_415(
    client: FlaskClient, tenant: TenantKey, content_type: str | None, job_rows: Rows
) -> None:
    data = json.dumps({"transcript": TEXT_TRANSCRIPT}).encode()
    response = client.post("/v1/jobs", data=data, headers=tenant.headers, content_type=content_type)
    assert response.status_code == 415, response.json
    assert response.json["code"] == "unsupported_media_type"
    assert job_rows(tenant.tenant_id) == []


@pytest.mark.parametrize(
    "data",
    [
        b'{"transcript": "Agent: hi", "metadata": {"x": NaN}}',
        b'{"transcript": "Agent: hi", "metadata": {"x": Infinity}}',
    ],
    ids=["NaN", "Infinity"],
)
def test_non_standard_json_numbers_are_refused(
    client: FlaskClient, tenant: TenantKey, data: bytes, job_rows: Rows, stored_keys: Keys
) -> None:
    """RFC 8259 has no NaN/Infinity; PostgreSQL's JSONB refuses them, so they are bad input (4xx)."""
    response = client.post(
        "/v1/jobs", data=data, headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code in {400, 422}, (response.status_code, response.json)
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


@pytest.mark.parametrize(
    "options",
    [{"external_id": "crm\x00-1"}, {"metadata": {"note": "a\x00b"}}, {"call_type": "\x00"}],
    ids=["external_id", "metadata", "call_type"],
)
def test_nul_characters_are_bad_input_not_an_outage(
    client: FlaskClient,
    tenant: TenantKey,
    options: dict[str, Any],
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    """PostgreSQL text cannot hold U+0000: that is the client's input (4xx), not a 503 to retry."""
    body = {"transcript": TEXT_TRANSCRIPT, **options}
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.json)
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


def test_an_oversized_json_body_is_413(
    client: FlaskClient, tenant: TenantKey, settings: Settings, job_rows: Rows, stored_keys: Keys
) -> None:
    turn = {"speaker": "agent", "text": "word " * 1000}
    count = settings.max_upload_bytes * 2 // len(json.dumps(turn))
    data = json.dumps({"transcript": [turn] * count}).encode()
    response = client.post(
        "/v1/jobs", data=data, headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code == 413, response.json
    assert response.json["code"] == "too_large"
    limit = settings.max_json_bytes
    assert response.json["detail"] == f"a JSON (or YAML) body is limited to {limit} bytes (10 MiB)"
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


# --- status and result -------------------------------------------------------------------------


def test_status_of_a_queued_job(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript, settings: Settings
) -> None:
    job = post_transcript(tenant, external_id="e-1")
    response = client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers)
    assert response.status_code == 200
    view = JobView.model_validate(response.json)
    assert view.id == job["id"] and view.status == "queued" and view.external_id == "e-1"
    assert response.headers["Retry-After"] == str(settings.poll_after_s)
    assert response.json == job


def test_result_before_completion_is_409(
    client: FlaskClient, tenant: TenantKey, post_transcript: PostTranscript, settings: Settings
) -> None:
    job = post_transcript(tenant)
    response = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "result_not_ready"
    assert response.headers["Retry-After"] == str(settings.poll_after_s)


# --- tenant isolation --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/result"])
def test_another_tenants_job_is_indistinguishable_from_none(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    post_transcript: PostTranscript,
    suffix: str,
) -> None:
    job = post_transcript(tenant)
    theirs = client.get(f"/v1/jobs/{job['id']}{suffix}", headers=other_tenant.headers)
    missing_id = "job_" + uuid.uuid4().hex[:26]
    missing = client.get(f"/v1/jobs/{missing_id}{suffix}", headers=other_tenant.headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.data == missing.data
    assert theirs.headers == missing.headers
    assert theirs.json["code"] == "not_found"
    # The owner still sees it.
    assert client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).status_code == 200


def test_lists_are_per_tenant(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    post_transcript: PostTranscript,
) -> None:
    mine = post_transcript(tenant, external_id="shared-ref")
    theirs = post_transcript(other_tenant, external_id="shared-ref")

    def ids(key: TenantKey, **query: str) -> list[str]:
        response = client.get("/v1/jobs", headers=key.headers, query_string=query)
        assert response.status_code == 200
        return [j["id"] for j in response.json["data"]]

    assert ids(tenant) == [mine["id"]]
    assert ids(other_tenant) == [theirs["id"]]
    assert ids(other_tenant, external_id="shared-ref") == [theirs["id"]]
    assert ids(other_tenant, status="queued") == [theirs["id"]]


def test_a_cursor_does_not_cross_tenants(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    post_transcript: PostTranscript,
) -> None:
    for _ in range(3):
        post_transcript(tenant)
    page = client.get("/v1/jobs?limit=1", headers=tenant.headers).json
    assert page["next_cursor"]
    response = client.get(
        "/v1/jobs", headers=other_tenant.headers, query_string={"cursor": page["next_cursor"]}
    )
    assert response.status_code == 200
    assert response.json["data"] == []
