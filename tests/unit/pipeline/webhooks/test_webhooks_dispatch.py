"""The dispatcher's guarantees: claims never collide (SKIP LOCKED), a duplicated task sends nothing,
a lost task only delays, DNS that changes after registration reaches nothing, and rotation overlaps."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.adapters.webhook_http import HttpWebhookSender
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.db.webhook_models import WebhookDelivery, WebhookEndpoint
from pipeline.settings import Settings
from pipeline.webhooks import deliveries, dispatch, endpoints
from pipeline.webhooks.ssrf import UrlPolicy
from tests.conftest import TenantKey
from tests.support.receiver import receiver
from tests.support.webhooks import (
    Dns,
    add_endpoint,
    attempts_of,
    deliveries_of,
    endpoint_row,
    finish_job,
    new_job,
    pump,
    settled,
)

PUBLIC = "93.184.216.34"


def one_delivery(sessions: sessionmaker[Session], tenant: TenantKey, url: str) -> WebhookDelivery:
    add_endpoint(sessions, tenant.tenant_id, url)
    finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
    (row,) = deliveries_of(sessions, job_id=job_id)
    return row


def test_a_duplicated_deliver_message_sends_once(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        row = one_delivery(sessions, tenant, hook.url())
        claims: list[deliveries.Claim] = []
        dispatch.dispatch_due(sessions, hook_settings, claims.append)
        (claim,) = [c for c in claims if c.delivery_id == row.id]
        assert dispatch.deliver(sessions, sender, claim, hook_settings) == "succeeded"
        assert dispatch.deliver(sessions, sender, claim, hook_settings) is None  # redelivered task
    assert len(hook.received) == 1
    assert len(attempts_of(sessions, row.id)) == 1


def test_concurrent_dispatchers_never_claim_the_same_row(
    sessions: sessionmaker[Session], tenant: TenantKey, hook_settings: Settings
) -> None:
    add_endpoint(sessions, tenant.tenant_id, "http://127.0.0.1:9/hooks")
    for _ in range(3):
        finish_job(sessions, new_job(sessions, tenant.tenant_id))
    ids = {r.id for r in deliveries_of(sessions, tenant_id=tenant.tenant_id)}
    assert len(ids) == 3
    held, release = threading.Event(), threading.Event()
    first: list[deliveries.Claim] = []

    def hold_claims() -> None:  # dispatcher A claims and keeps its transaction open
        with transaction(sessions) as session:
            first.extend(deliveries.claim_due(session, limit=100, lease_s=30))
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold_claims)
    thread.start()
    try:
        assert held.wait(10)
        with transaction(sessions) as session:  # dispatcher B, meanwhile
            second = deliveries.claim_due(session, limit=100, lease_s=30)
    finally:
        release.set()
        thread.join(10)
    assert {c.delivery_id for c in first} >= ids
    assert not ids & {c.delivery_id for c in second}


def test_a_lost_deliver_task_only_delays_the_delivery(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    short_lease = hook_settings.model_copy(update={"webhook_lease_s": 0.2})
    with receiver() as hook:
        row = one_delivery(sessions, tenant, hook.url())
        lost: list[deliveries.Claim] = []
        dispatch.dispatch_due(sessions, short_lease, lost.append)  # published, never run
        assert deliveries_of(sessions, id=row.id)[0].state == "delivering"
        pump(sessions, short_lease, sender, until=settled(sessions, row.id))
        assert dispatch.deliver(sessions, sender, lost[0], short_lease) is None  # it turns up late
    assert len(hook.received) == 1
    assert deliveries_of(sessions, id=row.id)[0].state == "succeeded"


def test_dns_that_changes_after_registration_reaches_nothing(
    sessions: sessionmaker[Session], tenant: TenantKey, hook_settings: Settings
) -> None:
    dns = Dns({"hooks.customer.test": [PUBLIC]})
    strict = UrlPolicy(allow_http=True)  # loopback not allowed: the production policy
    with receiver() as hook:
        url = f"http://hooks.customer.test:{hook.port}/in"
        add_endpoint(sessions, tenant.tenant_id, url, policy=strict, resolver=dns)  # public: OK
        dns.table["hooks.customer.test"] = ["127.0.0.1"]  # … then the name moves to loopback
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        production = hook_settings.model_copy(update={"webhook_allow_loopback": False})
        sender = HttpWebhookSender.from_settings(production, resolver=dns)
        pump(sessions, production, sender, until=settled(sessions, row.id, "failed"))
    assert hook.connections == 0
    (attempt,) = attempts_of(sessions, row.id)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("unsafe_webhook_url")
    assert "127.0.0.1" in attempt.error


def test_during_the_overlap_a_receiver_with_the_old_secret_still_verifies(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        old = endpoint.secret
        hook.secrets[:] = [old]  # the customer has not deployed the new secret yet
        with transaction(sessions) as session:
            row = session.get(WebhookEndpoint, endpoint.id)
            assert row is not None
            new = endpoints.rotate_secret(session, row, overlap_s=3600)
        finish_job(sessions, during := new_job(sessions, tenant.tenant_id))
        (first,) = deliveries_of(sessions, job_id=during)
        pump(sessions, hook_settings, sender, until=settled(sessions, first.id))
        assert [r.verified_by for r in hook.received] == [{old}]

        expire_previous_secret(sessions, endpoint.id)
        finish_job(sessions, after := new_job(sessions, tenant.tenant_id))
        (second,) = deliveries_of(sessions, job_id=after)
        hook.secrets[:] = [old, new]
        pump(sessions, hook_settings, sender, until=lambda: len(hook.received) == 2)
    assert hook.received[1].verified_by == {new}  # after the overlap only the new secret signs
    assert hook.received[1].webhook_id == second.id
    assert len(hook.received[1].headers["webhook-signature"].split()) == 1


def expire_previous_secret(sessions: sessionmaker[Session], endpoint_id: str) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )


def test_a_test_ping_reaches_the_endpoint_whatever_its_filter(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url(), event_types=("job.failed",))
        hook.secrets.append(endpoint.secret)
        with transaction(sessions) as session:
            row = session.get(WebhookEndpoint, endpoint.id)
            assert row is not None
            ping_id = deliveries.enqueue_ping(session, row).id
        pump(sessions, hook_settings, sender, until=settled(sessions, ping_id))
    (got,) = hook.verified
    assert got.payload["type"] == "webhook.test" and got.webhook_id == ping_id


def test_deleting_an_endpoint_closes_its_queue_and_keeps_its_log(
    sessions: sessionmaker[Session], tenant: TenantKey, hook_settings: Settings
) -> None:
    row = one_delivery(sessions, tenant, "http://127.0.0.1:9/hooks")
    with transaction(sessions) as session:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        assert endpoint is not None
        endpoints.delete_endpoint(session, endpoint)
    (kept,) = deliveries_of(sessions, id=row.id)
    assert (kept.state, kept.endpoint_id, kept.last_error) == (
        "dead", None, "the endpoint was deleted"
    )  # fmt: skip
    with transaction(sessions) as session:
        loaded = session.get(WebhookDelivery, row.id)
        assert loaded is not None
        with pytest.raises(deliveries.CannotRedeliver, match="deleted"):
            deliveries.redeliver(session, loaded)


def test_re_enabling_clears_the_reason_and_the_failure_clock(
    sessions: sessionmaker[Session], tenant: TenantKey
) -> None:
    endpoint = add_endpoint(sessions, tenant.tenant_id, "http://127.0.0.1:9/hooks")
    with transaction(sessions) as session:
        row = session.get(WebhookEndpoint, endpoint.id)
        assert row is not None
        deliveries.disable_endpoint(
            session, row, reason="the endpoint answered 410 Gone", now=utcnow(), settings=Settings()
        )
    assert endpoint_row(sessions, endpoint.id).disabled_reason == "the endpoint answered 410 Gone"
    with transaction(sessions) as session:
        row = session.get(WebhookEndpoint, endpoint.id)
        assert row is not None
        check = endpoints.UrlCheck(UrlPolicy(allow_http=True, allow_loopback=True), Dns())
        endpoints.update_endpoint(session, row, check=check, enabled=True)
    after = endpoint_row(sessions, endpoint.id)
    assert after.enabled and after.disabled_reason is None and after.failing_since is None
