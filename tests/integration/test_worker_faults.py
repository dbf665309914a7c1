"""Faults against the real worker: redelivery, killed pool processes, poison inputs, broken chains.

These prove RELIABILITY.md's promises 1, 5 and 6 on real Redis, PostgreSQL and a worker process.
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import psutil
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Caller
from api.intake import accept_transcript
from api.state import AppState
from pipeline.artifacts import artifact_key
from pipeline.db.jobs import steps_of
from pipeline.db.models import Job, JobResult, OutboxMessage
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from tests.conftest import TenantKey
from tests.integration.conftest import Poll, sample
from tests.integration.test_lifecycle import post_audio
from workers import outbox
from workers.workflow import start_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
TRANSCRIPT = {
    "transcript": "Agent: Thank you for calling, my name is Ann.\nCustomer: Hi, I need help."
}


def envelope_of(sessions: sessionmaker[Session], job_id: str) -> JobEnvelope:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return JobEnvelope.model_validate(job.envelope)


def count(sessions: sessionmaker[Session], model: Any, **where: str) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.scalar(query) or 0)


def wait_status(
    sessions: sessionmaker[Session], job_id: str, status: str, *, attempts: int = 1
) -> None:
    """Wait until the job is in `status` with its current step at `attempts` (the work has begun)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.get(Job, job_id)
            if job is not None and job.status == status:
                running = [s for s in steps_of(session, job_id) if s.state == "running"]
                if running and running[0].attempts == attempts:
                    return
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never reached {status} (attempt {attempts})")


def kill_busy_child(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the pool process that is doing the work: the one burning CPU (Whisper is running).

    Only that one: killing every child at once, ~100 ms apart, hits a billiard bookkeeping race in
    which a lost job is never re-queued (the stuck-job reaper is the safety net for such cases).
    """
    children = psutil.Process(worker.pid).children()
    before = {c.pid: sum(c.cpu_times()[:2]) for c in children}
    time.sleep(0.5)
    busy = max(children, key=lambda c: sum(c.cpu_times()[:2]) - before[c.pid])
    busy.send_signal(signal.SIGKILL)


def test_duplicate_delivery_adds_no_rows(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    job_id = client.post("/v1/jobs", json=TRANSCRIPT, headers=tenant.headers).json["id"]
    assert poll(job_id, tenant.headers)["status"] == "completed"
    before = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json

    start_pipeline(envelope_of(sessions, job_id))  # the same work, delivered again
    start_pipeline(envelope_of(sessions, job_id))
    time.sleep(2)  # not a timing assertion: room for the duplicates to be consumed
    assert count(sessions, JobResult, job_id=job_id) == 1
    after = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json
    assert (after["completed_at"], after["steps"]) == (before["completed_at"], before["steps"])
    assert poll(job_id, tenant.headers)["status"] == "completed"


def test_killed_pool_process_is_rerun_and_completes(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    job_id = post_audio(client, tenant, sample("stereo.wav").read_bytes(), "call.wav").json["id"]
    wait_status(sessions, job_id, "transcribing")
    kill_busy_child(worker)

    job = poll(job_id, tenant.headers)
    assert job["status"] == "completed", job["error"]
    steps = {s["stage"]: s for s in job["steps"]}
    assert steps["transcribe"]["attempts"] == 2
    assert worker.poll() is None


def test_poison_input_fails_after_the_attempts_cap(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    job_id = post_audio(client, tenant, sample("stereo.wav").read_bytes(), "call.wav").json["id"]
    for attempt in (1, 2, 3):  # the input "kills" its worker every time (MAX_STAGE_ATTEMPTS = 3)
        wait_status(sessions, job_id, "transcribing", attempts=attempt)
        kill_busy_child(worker)

    job = poll(job_id, tenant.headers)
    assert job["status"] == "failed"
    assert job["error"]["stage"] == "transcribe"
    assert job["error"]["code"] == "attempts_exhausted"
    assert worker.poll() is None
    again = client.post("/v1/jobs", json=TRANSCRIPT, headers=tenant.headers).json["id"]
    assert poll(again, tenant.headers)["status"] == "completed"


def test_permanent_error_mid_chain_stops_later_stages(
    app: Any,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    state: AppState = app.extensions["callintel"]
    job = accept_unpublished(app, tenant)
    envelope = envelope_of(sessions, job.id)
    # transcribe's artifact exists (so it is skipped) but is corrupt: diarize fails permanently.
    state.blobs.put_bytes(
        artifact_key(envelope, Stage.TRANSCRIBE), b'{"bad": 1}', content_type="application/json"
    )
    outbox.relay(sessions, job_ids=[job.id])

    done = poll(job.id, tenant.headers)
    assert done["status"] == "failed"
    assert done["error"]["stage"] == "diarize"
    assert done["error"]["code"] == "corrupt_artifact"
    later = [s for s in done["steps"] if s["stage"] in ("analyze", "score", "persist")]
    assert [(s["state"], s["attempts"]) for s in later] == [("pending", 0)] * 3
    assert worker.poll() is None


def accept_unpublished(app: Any, tenant: TenantKey) -> Job:
    """Create a job the way the API does, but stop before publishing (as if the API crashed)."""
    state: AppState = app.extensions["callintel"]
    caller = Caller(tenant_id=tenant.tenant_id, tenant_name="acme", config={})
    with app.test_request_context():
        return accept_transcript(state, caller, TRANSCRIPT)


def test_crash_between_commit_and_publish_is_recovered_by_the_sweep(
    app: Any,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    job = accept_unpublished(app, tenant)
    time.sleep(1)
    assert count(sessions, Job, id=job.id, status="queued") == 1

    assert outbox.relay(sessions, older_than_s=0) >= 1  # what the beat sweep runs
    assert poll(job.id, tenant.headers)["status"] == "completed"
    outbox.relay(sessions, older_than_s=0)  # a second sweep does not publish the start again
    with sessions() as session:
        start = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.job_id == job.id, OutboxMessage.topic == "pipeline.start"
            )
        ).one()
        assert start.attempts == 1
        assert start.published_at is not None
