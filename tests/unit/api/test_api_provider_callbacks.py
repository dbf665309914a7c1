"""AssemblyAI's completion callback: only a valid per-job token makes that job's re-check due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import create_app
from pipeline import provider_webhooks
from pipeline.db import jobs, provider_checks
from pipeline.db.models import JobStep, OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import InputKind, Stage
from tests.conftest import TenantKey
from tests.support.jobs import queued_job

URL = provider_webhooks.WEBHOOK_PATH


@pytest.fixture
def callback_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "provider_webhook_secret": SecretStr("cb-secret"),
            "public_base_url": "https://callintel.example",
        }
    )


@pytest.fixture
def cb_client(callback_settings: Settings) -> Iterator[FlaskClient]:
    app: Flask = create_app({"TESTING": True, "SETTINGS": callback_settings})
    yield app.test_client()
    app.extensions["callintel"].engine.dispose()


def waiting_job(sessions: sessionmaker[Session], tenant: TenantKey, *, ref: str) -> str:
    with transaction(sessions) as session:
        job = queued_job(session, tenant_id=tenant.tenant_id, kind=InputKind.AUDIO)
        provider_checks.record_submission(session, job.id, Stage.TRANSCRIBE, ref=ref)
        provider_checks.schedule_check(session, job.id, Stage.TRANSCRIBE, after_s=600)
        # The creation's outbox row was published long ago.
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.job_id == job.id)):
            row.published_at = row.created_at
        return job.id


def pending_starts(sessions: sessionmaker[Session], job_id: str) -> int:
    with sessions() as session:
        return len(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.job_id == job_id, OutboxMessage.published_at.is_(None)
                )
            ).all()
        )


def test_the_callback_url_carries_the_job_and_the_token_is_per_job(
    callback_settings: Settings,
) -> None:
    url = provider_webhooks.callback_url("job_a", callback_settings)
    assert url == f"https://callintel.example{URL}?job=job_a"
    token = provider_webhooks.token_for("job_a", callback_settings)
    assert token and provider_webhooks.verify("job_a", token, callback_settings)
    assert not provider_webhooks.verify("job_b", token, callback_settings)


def test_a_valid_callback_schedules_an_immediate_check(
    cb_client: FlaskClient,
    callback_settings: Settings,
    sessions: sessionmaker[Session],
    tenant: TenantKey,
) -> None:
    job_id = waiting_job(sessions, tenant, ref="tr_1")
    token = provider_webhooks.token_for(job_id, callback_settings)
    assert token is not None
    response = cb_client.post(
        f"{URL}?job={job_id}",
        json={"transcript_id": "tr_1", "status": "completed"},
        headers={provider_webhooks.HEADER: token},
    )
    assert response.status_code == 200
    assert response.json == {"received": True, "checked": True}
    # Published right away by the relay (the broker is real), so nothing is left pending…
    assert pending_starts(sessions, job_id) == 0
    with sessions() as session:
        starts = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.job_id == job_id, OutboxMessage.topic == jobs.TOPIC_START
            )
        ).all()
        step = session.get(JobStep, (job_id, Stage.TRANSCRIBE.value))
    # …and it is a new start (creation + this callback), and the parked check moved up from 600 s.
    assert len(starts) == 2
    assert step is not None and step.next_check_at is not None
    assert step.next_check_at < utcnow() + timedelta(seconds=590)


@pytest.mark.parametrize("token", ["", "forged", None])
def test_a_callback_without_the_job_token_is_refused(
    cb_client: FlaskClient, sessions: sessionmaker[Session], tenant: TenantKey, token: str | None
) -> None:
    job_id = waiting_job(sessions, tenant, ref="tr_2")
    headers = {} if token is None else {provider_webhooks.HEADER: token}
    response = cb_client.post(
        f"{URL}?job={job_id}",
        json={"transcript_id": "tr_2", "status": "completed"},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert pending_starts(sessions, job_id) == 0


def test_a_late_callback_for_another_transcript_changes_nothing(
    cb_client: FlaskClient,
    callback_settings: Settings,
    sessions: sessionmaker[Session],
    tenant: TenantKey,
) -> None:
    job_id = waiting_job(sessions, tenant, ref="tr_3")
    token = provider_webhooks.token_for(job_id, callback_settings)
    assert token is not None
    response = cb_client.post(
        f"{URL}?job={job_id}",
        json={"transcript_id": "tr_other", "status": "completed"},
        headers={provider_webhooks.HEADER: token},
    )
    assert response.status_code == 200 and response.json == {"received": True, "checked": False}
    assert pending_starts(sessions, job_id) == 0


def test_a_callback_without_a_transcript_id_is_a_400(
    cb_client: FlaskClient, callback_settings: Settings
) -> None:
    token = provider_webhooks.token_for("job_x", callback_settings)
    assert token is not None
    response = cb_client.post(
        f"{URL}?job=job_x", data="not json", headers={provider_webhooks.HEADER: token}
    )
    assert response.status_code == 400 and response.json["code"] == "invalid_request"  # type: ignore[index]
