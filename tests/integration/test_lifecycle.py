"""End to end: POST → storage → Celery chain in a real worker → database → polling → result."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.conftest import TenantKey
from tests.integration.conftest import Poll, post_audio, sample

pytestmark = pytest.mark.integration


def test_stereo_recording_completes_with_roles_by_channel(
    client: FlaskClient, tenant: TenantKey, worker: subprocess.Popen[bytes], poll: Poll
) -> None:
    response = post_audio(
        client, tenant, sample("stereo.wav").read_bytes(), "call.wav", external_id="crm-42"
    )
    assert response.status_code == 202, response.json
    assert response.headers["Location"] == f"/v1/jobs/{response.json['id']}"

    job = poll(response.json["id"], tenant.headers)
    assert job["status"] == "completed", job["error"]
    assert [s["state"] for s in job["steps"]] == ["succeeded"] * 5
    result = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers).json

    assert result["call"]["external_id"] == "crm-42"
    assert result["channels"] == 2
    turns = result["transcript"]
    agent_text = " ".join(u["text"] for u in turns if u["role"] == "agent").lower()
    customer_text = " ".join(u["text"] for u in turns if u["role"] == "customer").lower()
    assert "calling" in agent_text and "my name is" in agent_text
    assert "charged" in customer_text or "bill" in customer_text
    assert all(u["role_confidence"] == 1.0 for u in turns)
    assert result["metrics"]["by_role"]["agent"]["talk_ms"] > 0
    assert result["metrics"]["by_role"]["customer"]["talk_ms"] > 0
    items = {i["id"]: i for s in result["score"]["sections"] for i in s["items"]}
    assert items["greeting"]["answer"] == "yes" and items["greeting"]["evidence"], items["greeting"]
    assert result["provenance"]["audio_seconds"] > 10


def test_text_transcript_completes(
    client: FlaskClient, tenant: TenantKey, worker: subprocess.Popen[bytes], poll: Poll
) -> None:
    body = json.loads(sample("transcript.json").read_text())
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.json

    job = poll(response.json["id"], tenant.headers)
    assert job["status"] == "completed", job["error"]
    result = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers).json
    roles = {u["role"] for u in result["transcript"]}
    assert roles == {"agent", "customer"}
    assert result["score"]["normalized"] is not None and result["score"]["normalized"] > 0.5
    assert result["sentiment"]["by_role"]["customer"] is not None


def test_mono_recording_gets_roles_from_separated_voices(
    client: FlaskClient, tenant: TenantKey, worker: subprocess.Popen[bytes], poll: Poll
) -> None:
    response = post_audio(client, tenant, sample("mono.wav").read_bytes(), "mono.wav")
    job = poll(response.json["id"], tenant.headers)
    assert job["status"] == "completed", job["error"]
    result = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers).json

    assert result["channels"] == 1
    turns = result["transcript"]
    assert {u["role"] for u in turns} == {"agent", "customer"}
    assert all(0.0 < u["role_confidence"] < 1.0 for u in turns)  # inferred, never certain
    agent_text = " ".join(u["text"] for u in turns if u["role"] == "agent").lower()
    customer_text = " ".join(u["text"] for u in turns if u["role"] == "customer").lower()
    assert "calling" in agent_text and "money back" in customer_text
    items = {i["id"]: i for s in result["score"]["sections"] for i in s["items"]}
    assert items["greeting"]["answer"] == "yes"


def test_worker_logs_carry_no_transcript_text(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    worker_log: Path,
) -> None:
    secret_line = "my account number is zebra quartz nine"
    body = {"transcript": f"Agent: Hello, how can I help?\nCustomer: {secret_line}"}
    job_id = client.post("/v1/jobs", json=body, headers=tenant.headers).json["id"]
    assert poll(job_id, tenant.headers)["status"] == "completed"
    log = worker_log.read_text()
    assert job_id in log  # the log does talk about this job …
    assert "zebra quartz" not in log  # … but never says what was said
    assert tenant.key not in log


def test_plain_text_transcript_completes(
    client: FlaskClient, tenant: TenantKey, worker: subprocess.Popen[bytes], poll: Poll
) -> None:
    text = sample("transcript.txt").read_text()
    response = client.post("/v1/jobs", json={"transcript": text}, headers=tenant.headers)
    assert response.status_code == 202, response.json
    job = poll(response.json["id"], tenant.headers)
    assert job["status"] == "completed", job["error"]


def test_truncated_wav_fails_with_invalid_audio_and_worker_survives(
    client: FlaskClient, tenant: TenantKey, worker: subprocess.Popen[bytes], poll: Poll
) -> None:
    data = sample("stereo.wav").read_bytes()
    response = post_audio(client, tenant, data[: len(data) // 3], "cut.wav")
    assert response.status_code == 202, response.json

    job = poll(response.json["id"], tenant.headers)
    assert job["status"] == "failed"
    assert job["error"] == {
        "stage": "transcribe",
        "code": "invalid_audio",
        "message": job["error"]["message"],
    }
    assert worker.poll() is None
    problem = client.get(f"/v1/jobs/{job['id']}/result", headers=tenant.headers)
    assert problem.status_code == 409 and problem.json["code"] == "job_failed"

    # The worker still takes new work after the failure.
    again = client.post(
        "/v1/jobs", json={"transcript": "Agent: hello\nCustomer: hi"}, headers=tenant.headers
    )
    assert poll(again.json["id"], tenant.headers)["status"] == "completed"


def test_corrupt_audio_is_refused_at_intake(client: FlaskClient, tenant: TenantKey) -> None:
    response = post_audio(client, tenant, b"this is not audio at all" * 100, "call.wav")
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "unsupported_media_type"
    listing = client.get("/v1/jobs", headers=tenant.headers).json
    assert listing["data"] == []
