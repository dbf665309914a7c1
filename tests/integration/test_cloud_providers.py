"""The production providers end to end: a tenant on AssemblyAI + Gemini, a real worker (with beat)
and the real SDKs against fake AssemblyAI and Gemini servers on 127.0.0.1.

The deployment's default stays local; the tenant's configuration selects the cloud providers, and
a re-check of a busy provider waits in the database, not in a worker slot.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.models import JobStep
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from pipeline.settings import Settings
from schemas.tenant import TenantConfig
from tests.conftest import TenantKey, make_tenant, settings_env
from tests.integration.conftest import ALL_QUEUES, Poll, post_audio, sample
from tests.support.fake_assemblyai import FakeAssemblyAI
from tests.support.fake_gemini import BatchPlan, FakeGemini
from tests.support.services import celery_worker

pytestmark = pytest.mark.integration
NDJSON = "application/x-ndjson"
TURNS = [
    {"speaker": "agent", "text": "Thank you for calling Acme Broadband, this call is recorded."},
    {"speaker": "customer", "text": "My internet has been down since Monday."},
]
# One Gemini answer of the fake (1000 prompt, 200 + 50 output tokens) at the default prices.
SYNC_COST = (1000 * 0.30 + 250 * 2.50) / 1e6


@pytest.fixture(scope="module")
def aai() -> Iterator[FakeAssemblyAI]:
    with FakeAssemblyAI(complete_after_s=2.0) as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(latency_s=0.1).running() as fake:
        yield fake


@pytest.fixture(scope="module")
def cloud_worker(
    settings: Settings,
    aai: FakeAssemblyAI,
    gemini: FakeGemini,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    cloud = settings.model_copy(
        update={
            "assemblyai_api_key": SecretStr(aai.api_key),
            "assemblyai_base_url": aai.url,
            "assemblyai_timeout_s": 5.0,
            "assemblyai_poll_schedule_s": [0.5] * 20,
            "provider_check_tick_s": 0.3,
            "gemini_api_key": SecretStr(gemini.api_key),
            "gemini_base_url": gemini.base_url,
            "gemini_timeout_s": 10.0,
            "gemini_batch_poll_schedule_s": [0.3] * 20,
            "batch_max_in_flight": 200,  # unit tests leave released batch items nobody runs
        }
    )
    log = tmp_path_factory.mktemp("cloud") / "worker.log"
    with celery_worker(settings_env(cloud), log=log, queues=ALL_QUEUES, beat=True) as proc:
        yield proc


@pytest.fixture
def cloud_tenant(sessions: sessionmaker[Session]) -> TenantKey:
    key = make_tenant(sessions, "cloud")
    config = {
        "providers": {"transcriber": "assemblyai", "analyzer": "gemini"},
        "context": {"business_description": "Acme Broadband, home internet"},
    }
    with transaction(sessions) as session:
        put_config(session, key.tenant_id, TenantConfig.model_validate(config), author="test")
    return key


def submit(client: FlaskClient, tenant: TenantKey, path: Path) -> str:
    response = post_audio(client, tenant, path.read_bytes(), path.name)
    assert response.status_code == 202, response.json
    job_id: str = response.json["id"]  # type: ignore[index]
    return job_id


def result(client: FlaskClient, tenant: TenantKey, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}/result", headers=tenant.headers)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def test_stereo_call_runs_on_assemblyai_and_gemini_without_holding_a_worker(
    cloud_worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    cloud_tenant: TenantKey,
    aai: FakeAssemblyAI,
    gemini: FakeGemini,
    sessions: sessionmaker[Session],
) -> None:
    job_id = submit(client, cloud_tenant, sample("stereo.wav"))
    status = poll(job_id, cloud_tenant.headers, timeout=120)
    assert status["status"] == "completed", status
    body = result(client, cloud_tenant, job_id)
    # Multichannel: one speaker per channel, roles from the channel map (exact).
    roles = {(u["speaker"], u["role"], u["role_confidence"]) for u in body["transcript"]}
    assert roles == {("channel-0", "agent", 1.0), ("channel-1", "customer", 1.0)}
    submitted = [r for r in aai.requests if r.method == "POST" and r.path == "/v2/transcript"]
    assert submitted and submitted[-1].json["multichannel"] is True
    # Our storage is private, so the bytes were uploaded and AssemblyAI's upload URL submitted.
    assert submitted[-1].json["audio_url"].startswith("https://cdn.assemblyai.com/upload/")
    assert aai.uploads
    assert submitted[-1].json["language_detection"] is True
    assert body["language"] == "en"
    provenance = body["provenance"]
    providers = {s["stage"]: s["provider"] for s in provenance["stages"]}
    assert providers["transcribe"] == "assemblyai" and providers["analyze"] == "gemini"
    assert provenance["analyzer"] == "gemini" and provenance["input_tokens"] > 0
    assert provenance["estimated_cost_usd"] > 0 and provenance["prompt_hash"]
    assert body["analysis"]["provider"] == "gemini" and body["analysis"]["summary"]
    # The tenant's client context reached the prompt (from its configuration, not the request).
    assert any("Acme Broadband" in p for p in gemini.prompts)
    with sessions() as session:
        step = session.get(JobStep, (job_id, "transcribe"))
        assert step is not None
        # Checks that found AssemblyAI busy ended their task: none counts as an attempt.
        assert step.attempts == 1 and step.provider_ref and step.next_check_at is None


def test_a_transcript_that_ends_in_error_fails_the_job_with_the_providers_reason(
    cloud_worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    cloud_tenant: TenantKey,
    aai: FakeAssemblyAI,
) -> None:
    aai.error_next("Audio duration is too short.")
    job_id = submit(client, cloud_tenant, sample("mono.wav"))
    status = poll(job_id, cloud_tenant.headers, timeout=120)
    assert status["status"] == "failed"
    assert status["error"]["code"] == "transcription_failed"
    assert "too short" in status["error"]["message"]


def test_a_wrong_key_fails_fast_and_says_so_without_the_key(
    cloud_worker: subprocess.Popen[bytes],
    client: FlaskClient,
    poll: Poll,
    cloud_tenant: TenantKey,
    aai: FakeAssemblyAI,
) -> None:
    aai.fail_next("upload", status=401)
    job_id = submit(client, cloud_tenant, sample("mono.wav"))
    status = poll(job_id, cloud_tenant.headers, timeout=120)
    assert status["status"] == "failed" and status["error"]["code"] == "provider_auth"
    assert aai.api_key not in str(status)


def test_nightly_economy_batch_items_wait_on_gemini_batches_at_half_price(
    cloud_worker: subprocess.Popen[bytes],
    client: FlaskClient,
    gemini: FakeGemini,
    sessions: sessionmaker[Session],
) -> None:
    tenant = make_tenant(sessions, "economy")
    config = {"providers": {"analyzer": "gemini"}, "batches": {"gemini_batch": True}}
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, TenantConfig.model_validate(config), author="test")
    # Each batch job is found pending, then running, before it succeeds.
    gemini.batch_plan(BatchPlan(pending_checks=2), times=2)
    made = client.post("/v1/batches", json={"name": "economy"}, headers=tenant.headers).json
    assert made is not None
    lines = "".join(
        json.dumps({"transcript": TURNS, "external_id": f"c{i}"}) + "\n" for i in (1, 2)
    )
    added = client.post(
        f"/v1/batches/{made['id']}/items", data=lines, content_type=NDJSON, headers=tenant.headers
    )
    assert added.status_code == 200 and added.json is not None and added.json["accepted"] == 2
    client.post(f"/v1/batches/{made['id']}/close", headers=tenant.headers)

    view = wait_batch(client, tenant, made["id"])

    assert view["counts"]["completed"] == 2, view
    assert view["cost_usd"] == pytest.approx(2 * SYNC_COST / 2)
    assert view["saved_usd"] == pytest.approx(2 * SYNC_COST / 2) and view["saved_usd"] > 0
    for job_id in (item["job_id"] for item in added.json["items"]):
        body = result(client, tenant, job_id)
        assert body["provenance"]["estimated_cost_usd"] == pytest.approx(SYNC_COST / 2)
        assert body["provenance"]["batch_saved_usd"] == pytest.approx(SYNC_COST / 2)
        assert body["analysis"]["provider"] == "gemini" and body["analysis"]["summary"]
        with sessions() as session:
            step = session.get(JobStep, (job_id, "analyze"))
            assert step is not None and step.provider_ref in gemini.batches
            # Parked after the submit and after each check that found the batch pending or
            # running (a check is not an attempt), then done on the check that found it succeeded.
            assert gemini.batches[step.provider_ref].checks == 3
            assert (step.attempts, step.state, step.next_check_at) == (1, "succeeded", None)
    # Both analyses went through the Batch API: no synchronous request carried their prompts.
    assert not any("down since Monday" in p for p in gemini.prompts)


def wait_batch(client: FlaskClient, tenant: TenantKey, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/v1/batches/{batch_id}", headers=tenant.headers).json  # type: ignore[assignment]
        if view["status"] == "completed" and view["finished_at"]:
            return view
        time.sleep(0.5)
    raise AssertionError(f"batch not finished: {view}")
