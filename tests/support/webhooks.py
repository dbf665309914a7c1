"""Helpers for webhook tests: settings with a compressed schedule, jobs that finish, a pump that
drives the real dispatcher in-process, and a DNS the test controls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import jobs
from pipeline.db.session import transaction
from pipeline.db.webhook_models import (
    DEAD,
    OPEN_STATES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from pipeline.ids import new_id
from pipeline.settings import Settings
from pipeline.webhooks import dispatch, endpoints
from pipeline.webhooks.deliveries import Claim
from pipeline.webhooks.endpoints import UrlCheck
from pipeline.webhooks.ports import WebhookSender
from pipeline.webhooks.ssrf import UrlPolicy
from schemas.common import InputKind
from schemas.envelope import JobEnvelope, JobInput

FAST = {  # a day of retries compressed into well under a second
    "webhook_allow_http": True,
    "webhook_allow_loopback": True,
    "webhook_retry_schedule_s": [0, 0.05, 0.05, 0.05, 0.05],
    "webhook_jitter": 0.0,
    "webhook_connect_timeout_s": 2.0,
    "webhook_read_timeout_s": 2.0,
    "webhook_lease_s": 30.0,
}


TEST_POLICY = UrlPolicy(allow_http=True, allow_loopback=True)


class Dns:
    """A resolver the test controls (and can change between registration and send)."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        if host not in self.table:
            raise OSError(f"NXDOMAIN {host}")
        return self.table[host]


def fast_settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={**FAST, **update})


def close_all_open(sessions: sessionmaker[Session]) -> None:
    """Tests share one database: no test may leave deliveries that a later test's dispatcher sends."""
    with transaction(sessions) as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.state.in_(OPEN_STATES))
            .values(state=DEAD, next_attempt_at=None)
        )


def add_endpoint(
    sessions: sessionmaker[Session],
    tenant_id: str,
    url: str,
    *,
    policy: UrlPolicy = TEST_POLICY,
    resolver: Callable[[str, int], list[str]] | None = None,
    event_types: tuple[str, ...] = (),
) -> WebhookEndpoint:
    check = UrlCheck(policy, resolver or Dns())
    with transaction(sessions) as session:
        return endpoints.create_endpoint(
            session, tenant_id, url=url, check=check, event_types=event_types
        )


def new_job(
    sessions: sessionmaker[Session], tenant_id: str, *, callback_url: str | None = None
) -> str:
    job_id = new_id("job")
    stored = JobInput(
        kind=InputKind.TRANSCRIPT,
        blob_key=f"tenants/{tenant_id}/jobs/{job_id}/input.json",
        sha256="0" * 64,
        content_type="application/json",
        bytes=2,
        format="json",
    )
    envelope = JobEnvelope(job_id=job_id, tenant_id=tenant_id, input=stored)
    with transaction(sessions) as session:
        jobs.create_job(
            session, envelope, external_id="crm-1", call_type=None, metadata={},
            callback_url=callback_url,
        )  # fmt: skip
    return job_id


def finish_job(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    failed: bool = False,
    settings: Settings | None = None,
) -> bool:
    """Complete (or fail) the job the way the pipeline does; True if it changed."""
    settings = settings or Settings()  # the defaults: an immediate first delivery
    with transaction(sessions) as session:
        job = jobs.lock_job(session, job_id)
        assert job is not None
        if failed:
            return jobs.fail_job(
                session, job, None, code="invalid_audio", message="bad", settings=settings
            )
        return jobs.complete_job(session, job, schema_version="test", body={}, settings=settings)


def deliveries_of(sessions: sessionmaker[Session], **where: Any) -> list[WebhookDelivery]:
    with sessions() as session:
        query = select(WebhookDelivery)
        for name, value in where.items():
            query = query.where(getattr(WebhookDelivery, name) == value)
        return list(session.scalars(query.order_by(WebhookDelivery.created_at)))


def attempts_of(sessions: sessionmaker[Session], delivery_id: str) -> list[WebhookAttempt]:
    with sessions() as session:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        return list(session.scalars(query.order_by(WebhookAttempt.number)))


def endpoint_row(sessions: sessionmaker[Session], endpoint_id: str) -> WebhookEndpoint:
    with sessions() as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def pump(
    sessions: sessionmaker[Session],
    settings: Settings,
    sender: WebhookSender,
    *,
    until: Callable[[], bool],
    timeout: float = 20.0,
) -> None:
    """What beat and the `webhooks` workers do, in-process: claim due rows, send each, repeat."""

    def publish(claim: Claim) -> None:
        dispatch.deliver(sessions, sender, claim, settings)

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached after {timeout} s")
        dispatch.dispatch_due(sessions, settings, publish)
        time.sleep(0.02)


def settled(sessions: sessionmaker[Session], delivery_id: str, *states: str) -> Callable[[], bool]:
    def check() -> bool:
        with sessions() as session:
            row = session.get(WebhookDelivery, delivery_id)
            return row is not None and row.state in (states or ("succeeded", "dead"))

    return check
