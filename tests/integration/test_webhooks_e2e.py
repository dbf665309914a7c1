"""Webhooks end to end: API → real worker (the chain, then `webhooks.deliver`) → a receiver that
verifies with `standardwebhooks`; beat's `webhooks.dispatch_due` is sent to the worker by the test.

The worker gets the compressed schedule and the test-only loopback setting through its environment.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from api import create_app
from pipeline.settings import Settings
from tests.conftest import TenantKey, settings_env
from tests.integration.conftest import ALL_QUEUES, Poll
from tests.support.receiver import receiver
from tests.support.services import celery_worker, free_port
from tests.support.webhooks import attempts_of, close_all_open, deliveries_of, fast_settings
from workers.webhooks import dispatch_due

pytestmark = pytest.mark.integration
TRANSCRIPT = {"transcript": "Agent: Thank you for calling, I am Sam.\nCustomer: My bill is wrong."}
SCHEDULE = [0, 0.3, 0.3, 0.5, 1, 1, 2, 2]


@pytest.fixture(scope="module")
def hook_settings(settings: Settings) -> Settings:
    return fast_settings(settings, webhook_retry_schedule_s=SCHEDULE)


@pytest.fixture(scope="module")
def worker(hook_settings: Settings, worker_log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """tests/integration/conftest.py's worker, with the webhook settings in its environment."""
    with celery_worker(settings_env(hook_settings), log=worker_log, queues=ALL_QUEUES) as proc:
        yield proc


@pytest.fixture
def app(hook_settings: Settings) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SETTINGS": hook_settings})
    yield app
    app.extensions["callintel"].engine.dispose()


@pytest.fixture(autouse=True)
def quiet_deliveries(sessions: sessionmaker[Session]) -> Iterator[None]:
    close_all_open(sessions)
    yield
    close_all_open(sessions)


def beat_until(check: Callable[[], bool], *, timeout: float = 60) -> None:
    """What beat does on its schedule: send `webhooks.dispatch_due` to the workers."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached after {timeout} s")
        dispatch_due.delay()
        time.sleep(0.3)


def register(client: FlaskClient, tenant: TenantKey, url: str) -> str:
    response = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=tenant.headers)
    assert response.status_code == 201, response.json
    secret: str = response.json["secret"]  # type: ignore[index]
    return secret


def test_a_completed_job_reaches_a_verifying_receiver(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    with receiver() as hook:
        hook.secrets.append(register(client, tenant, hook.url()))
        job_id = client.post("/v1/jobs", json=TRANSCRIPT, headers=tenant.headers).json["id"]  # type: ignore[index]
        assert poll(job_id, tenant.headers)["status"] == "completed"
        beat_until(lambda: len(hook.verified) >= 1)
        dispatch_due.delay()  # a later beat tick must not send it again
        time.sleep(1)

    (got,) = hook.received
    assert got.verified_by and got.payload["type"] == "job.completed"
    assert got.payload["data"]["job_id"] == job_id
    (row,) = deliveries_of(sessions, job_id=job_id)
    assert got.webhook_id == row.id and row.state == "succeeded"
    log = client.get(f"/v1/webhooks/deliveries?job_id={job_id}", headers=tenant.headers).json
    assert log["data"][0]["attempt_log"][0]["status_code"] == 200  # type: ignore[index]


def test_a_receiver_that_is_down_for_a_while_only_delays_the_event(
    client: FlaskClient,
    tenant: TenantKey,
    worker: subprocess.Popen[bytes],
    poll: Poll,
    sessions: sessionmaker[Session],
) -> None:
    port = free_port()  # nothing listens there yet
    secret = register(client, tenant, f"http://127.0.0.1:{port}/hooks")
    job_id = client.post("/v1/jobs", json=TRANSCRIPT, headers=tenant.headers).json["id"]  # type: ignore[index]
    assert poll(job_id, tenant.headers)["status"] == "completed"
    (row,) = deliveries_of(sessions, job_id=job_id)
    beat_until(lambda: len(attempts_of(sessions, row.id)) >= 2)  # refused, refused …

    with receiver(secret, port=port) as hook:  # … then the receiver comes back
        beat_until(lambda: len(hook.verified) >= 1)

    (got,) = hook.received
    assert got.webhook_id == row.id and got.payload["data"]["job_id"] == job_id
    attempts = attempts_of(sessions, row.id)
    assert [a.error is not None for a in attempts[:-1]] == [True] * (len(attempts) - 1)
    assert all(a.error and a.error.startswith("connect_error") for a in attempts[:-1])
    assert attempts[-1].status_code == 200
    assert deliveries_of(sessions, id=row.id)[0].state == "succeeded"
