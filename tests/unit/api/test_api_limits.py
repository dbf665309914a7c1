"""Capacity limits at intake: a transcript or recording beyond what a stage can finish is a 422
`too_long` naming the limit and the measured value; a body beyond its byte limit is a 413 naming it.
Nothing is kept of a refused input."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from pipeline.db.models import Job
from pipeline.settings import Settings
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostAudio

Rows = Callable[[str], list[Job]]
Keys = Callable[[str], list[str]]
MAX_CHARS, MAX_UTTERANCES, MAX_SECONDS, MAX_JSON = 1_000, 10, 2, 20_000
RATE = 16_000  # mono 16-bit: 32,000 bytes a second


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app with small limits (the shared settings are session-wide)."""
    limits = {
        "max_transcript_chars": MAX_CHARS,
        "max_utterances": MAX_UTTERANCES,
        "max_audio_seconds": MAX_SECONDS,
        "max_json_bytes": MAX_JSON,
    }
    app = create_app({"TESTING": True, "SETTINGS": settings.model_copy(update=limits)})
    yield app
    app.extensions["callintel"].engine.dispose()


def turns(count: int, *, chars: int) -> list[dict[str, str]]:
    """`count` turns holding `chars` characters of text together."""
    sizes = [chars // count + (1 if i < chars % count else 0) for i in range(count)]
    return [{"speaker": ("agent", "customer")[i % 2], "text": "x" * n} for i, n in enumerate(sizes)]


def wav_of(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(2 * int(RATE * seconds)))
    return buffer.getvalue()


def post(client: FlaskClient, tenant: TenantKey, transcript: Any) -> TestResponse:
    return client.post("/v1/jobs", json={"transcript": transcript}, headers=tenant.headers)


def assert_too_long(response: TestResponse, *, setting: str, limit: int, measured: int) -> None:
    assert response.status_code == 422, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body is not None
    assert (body["code"], body["setting"], body["limit"], body["measured"]) == (
        "too_long",
        setting,
        limit,
        measured,
    )
    assert f"{setting} is {limit}" in body["detail"] and f"has {measured}" in body["detail"]
    assert "120 s stage limit" in body["detail"]  # the tests' STAGE_SOFT_LIMIT_S: the reason


def test_transcripts_at_the_limits_are_accepted(client: FlaskClient, tenant: TenantKey) -> None:
    response = post(client, tenant, turns(MAX_UTTERANCES, chars=MAX_CHARS))
    assert response.status_code == 202, response.json


def test_more_characters_than_the_limit_is_422_naming_it(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    response = post(client, tenant, turns(4, chars=MAX_CHARS + 1))
    assert_too_long(
        response, setting="MAX_TRANSCRIPT_CHARS", limit=MAX_CHARS, measured=MAX_CHARS + 1
    )
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


def test_more_lines_than_the_limit_is_422_naming_it(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    text = "\n".join(f"{('Agent', 'Customer')[i % 2]}: line {i}" for i in range(MAX_UTTERANCES + 1))
    response = post(client, tenant, text)
    assert_too_long(
        response, setting="MAX_UTTERANCES", limit=MAX_UTTERANCES, measured=MAX_UTTERANCES + 1
    )
    assert job_rows(tenant.tenant_id) == [] and stored_keys(tenant.tenant_id) == []


def test_a_recording_longer_than_the_limit_is_422_naming_it(
    post_audio: PostAudio, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    assert post_audio(tenant, wav_of(MAX_SECONDS)).status_code == 202
    response = post_audio(tenant, wav_of(MAX_SECONDS + 0.5))
    assert_too_long(response, setting="MAX_AUDIO_SECONDS", limit=MAX_SECONDS, measured=3)
    assert len(job_rows(tenant.tenant_id)) == 1  # only the first: the refused one left nothing
    assert len(stored_keys(tenant.tenant_id)) == 1


def test_a_body_over_its_byte_limit_is_413_naming_it(
    client: FlaskClient, tenant: TenantKey
) -> None:
    data = json.dumps({"transcript": turns(2, chars=MAX_JSON)}).encode()
    response = client.post(
        "/v1/jobs", data=data, headers=tenant.headers, content_type="application/json"
    )
    assert response.status_code == 413, response.json
    body = response.json
    assert body is not None
    assert (body["code"], body["limit"], body["unit"]) == ("too_large", MAX_JSON, "bytes")
    assert str(MAX_JSON) in body["detail"]


def test_a_batch_line_over_a_limit_is_rejected_as_too_long(
    client: FlaskClient, tenant: TenantKey
) -> None:
    created = client.post("/v1/batches", json={"name": "night"}, headers=tenant.headers)
    batch_id = created.json["id"]  # type: ignore[index]
    lines = [
        {"transcript": turns(2, chars=10)},
        {"transcript": turns(MAX_UTTERANCES + 1, chars=50)},
    ]
    response = client.post(
        f"/v1/batches/{batch_id}/items",
        data="\n".join(json.dumps(line) for line in lines) + "\n",
        content_type="application/x-ndjson",
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None
    assert body["accepted"] == 1
    [rejected] = body["rejected"]
    assert (rejected["line"], rejected["code"]) == (2, "too_long")
    assert "MAX_UTTERANCES is 10" in rejected["detail"]


def test_a_batch_line_naming_a_stored_recording_over_the_limit_is_too_long(
    client: FlaskClient, app: Flask, tenant: TenantKey
) -> None:
    blobs = app.extensions["callintel"].blobs
    short, long = (f"tenants/{tenant.tenant_id}/inbox/{n}.wav" for n in ("short", "long"))
    blobs.put_bytes(short, wav_of(MAX_SECONDS), content_type="audio/wav")
    blobs.put_bytes(long, wav_of(MAX_SECONDS + 1), content_type="audio/wav")
    created = client.post("/v1/batches", json={"name": "inbox"}, headers=tenant.headers)
    response = client.post(
        f"/v1/batches/{created.json['id']}/items",  # type: ignore[index]
        data=json.dumps({"key": short}) + "\n" + json.dumps({"key": long}) + "\n",
        content_type="application/x-ndjson",
        headers=tenant.headers,
    )
    body = response.json
    assert body is not None and body["accepted"] == 1, body
    [rejected] = body["rejected"]
    assert (rejected["line"], rejected["code"]) == (2, "too_long")
    assert "MAX_AUDIO_SECONDS is 2" in rejected["detail"]
