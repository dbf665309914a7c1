"""Durable delivery end to end on PostgreSQL and a verifying receiver: events written with the job's
final state, retries on the (compressed) schedule with one `webhook-id`, 410 and long failure
disabling the endpoint, Retry-After, timeouts, redirects, callbacks and redelivery."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.adapters.webhook_http import HttpWebhookSender
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.db.webhook_models import WebhookDelivery, WebhookEndpoint
from pipeline.settings import Settings
from pipeline.webhooks import deliveries, endpoints
from tests.conftest import TenantKey
from tests.support.receiver import HANG, Reply, receiver
from tests.support.webhooks import (
    add_endpoint,
    attempts_of,
    deliveries_of,
    endpoint_row,
    fast_settings,
    finish_job,
    new_job,
    pump,
    settled,
)


def test_a_completed_job_is_delivered_signed_and_logged(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        job_id = new_job(sessions, tenant.tenant_id)
        assert deliveries_of(sessions, job_id=job_id) == []  # nothing before the final state
        assert finish_job(sessions, job_id)
        (row,) = deliveries_of(sessions, job_id=job_id)  # written in the job's final transaction
        assert (row.event_type, row.state, row.endpoint_id) == (
            "job.completed",
            "pending",
            endpoint.id,
        )
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))

    (got,) = hook.verified
    assert got.webhook_id == row.id
    assert got.payload["type"] == "job.completed"
    assert got.payload["data"]["job_id"] == job_id
    assert got.payload["data"]["links"] == {
        "status": f"/v1/jobs/{job_id}",
        "result": f"/v1/jobs/{job_id}/result",
    }
    (done,) = deliveries_of(sessions, id=row.id)
    assert (done.state, done.attempts, done.last_status) == ("succeeded", 1, 200)
    assert done.delivered_at is not None
    (attempt,) = attempts_of(sessions, row.id)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, None)
    assert attempt.latency_ms is not None and attempt.response_excerpt == "ok"


def test_a_failed_job_sends_job_failed_and_a_repeated_transition_sends_nothing(
    sessions: sessionmaker[Session], tenant: TenantKey
) -> None:
    add_endpoint(sessions, tenant.tenant_id, "http://127.0.0.1:9/hooks")
    job_id = new_job(sessions, tenant.tenant_id)
    assert finish_job(sessions, job_id, failed=True)
    assert not finish_job(sessions, job_id, failed=True)  # a duplicate stage delivery …
    assert not finish_job(sessions, job_id)
    (row,) = deliveries_of(sessions, job_id=job_id)  # … adds no webhook
    assert row.event_type == "job.failed"
    assert row.payload["data"]["error"] == {"stage": None, "code": "invalid_audio"}


def test_event_type_filters_and_disabled_endpoints(
    sessions: sessionmaker[Session], tenant: TenantKey
) -> None:
    failed_only = add_endpoint(
        sessions, tenant.tenant_id, "http://127.0.0.1:9/a", event_types=("job.failed",)
    )
    everything = add_endpoint(sessions, tenant.tenant_id, "http://127.0.0.1:9/b")
    off = add_endpoint(sessions, tenant.tenant_id, "http://127.0.0.1:9/c")
    with transaction(sessions) as session:
        row = session.get(WebhookEndpoint, off.id)
        assert row is not None
        row.enabled = False
    job_id = new_job(sessions, tenant.tenant_id)
    finish_job(sessions, job_id)
    assert {r.endpoint_id for r in deliveries_of(sessions, job_id=job_id)} == {everything.id}
    other = new_job(sessions, tenant.tenant_id)
    finish_job(sessions, other, failed=True)
    targets = {r.endpoint_id for r in deliveries_of(sessions, job_id=other)}
    assert targets == {failed_only.id, everything.id}


def test_500_three_times_then_200_is_four_attempts_with_one_webhook_id(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver(script=[Reply(500), Reply(500), Reply(500)]) as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))

    assert len(hook.received) == 4 and len(hook.verified) == 4
    assert {r.webhook_id for r in hook.received} == {row.id}
    attempts = attempts_of(sessions, row.id)
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 500), (4, 200)]
    assert deliveries_of(sessions, id=row.id)[0].state == "succeeded"
    assert endpoint_row(sessions, endpoint.id).failing_since is None  # a success resets the clock


def test_the_budget_runs_out_then_the_delivery_is_dead_and_the_endpoint_still_enabled(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        hook.default = Reply(503)
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))

    assert len(hook.received) == len(hook_settings.webhook_retry_schedule_s) == 5
    dead = deliveries_of(sessions, id=row.id)[0]
    assert (dead.state, dead.attempts, dead.last_status, dead.next_attempt_at) == (
        "dead", 5, 503, None
    )  # fmt: skip
    after = endpoint_row(sessions, endpoint.id)
    assert after.enabled and after.failing_since is not None


def test_410_disables_the_endpoint_at_once_and_tells_the_other_endpoints(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver(script=[Reply(410)]) as gone, receiver() as ops:
        endpoint = add_endpoint(sessions, tenant.tenant_id, gone.url())
        watcher = add_endpoint(
            sessions, tenant.tenant_id, ops.url(), event_types=("endpoint.disabled",)
        )
        ops.secrets.append(watcher.secret)
        finish_job(sessions, first := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=first)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))
        pump(sessions, hook_settings, sender, until=lambda: len(ops.verified) == 1)
        finish_job(sessions, later := new_job(sessions, tenant.tenant_id))

    assert len(gone.received) == 1  # no retry after 410
    disabled = endpoint_row(sessions, endpoint.id)
    assert not disabled.enabled and disabled.disabled_at is not None
    assert disabled.disabled_reason == "the endpoint answered 410 Gone"
    assert deliveries_of(sessions, id=row.id)[0].state == "dead"
    notice = ops.verified[0].payload
    assert notice["type"] == "endpoint.disabled"
    assert notice["data"]["endpoint_id"] == endpoint.id
    assert notice["data"]["reason"] == disabled.disabled_reason
    assert deliveries_of(sessions, job_id=later) == []  # a disabled endpoint gets nothing new


def test_an_endpoint_failing_for_five_days_is_disabled(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    assert hook_settings.webhook_disable_after_s == 5 * 86400
    with receiver() as hook:
        hook.default = Reply(500)
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        finish_job(sessions, earlier := new_job(sessions, tenant.tenant_id))
        (first,) = deliveries_of(sessions, job_id=earlier)
        set_failing_since(sessions, endpoint.id, days=4, hours=23)
        pump(sessions, hook_settings, sender, until=settled(sessions, first.id))
        assert endpoint_row(sessions, endpoint.id).enabled  # not five days yet
        set_failing_since(sessions, endpoint.id, days=5, hours=0, minutes=1)
        finish_job(sessions, queued := new_job(sessions, tenant.tenant_id))
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        pump(
            sessions,
            hook_settings,
            sender,
            until=lambda: not endpoint_row(sessions, endpoint.id).enabled,
        )

    reason = endpoint_row(sessions, endpoint.id).disabled_reason
    assert reason is not None and reason.startswith("every delivery failed since")
    # The first failure past five days disabled it; the other queued event was closed unsent.
    assert len(hook.received) == len(hook_settings.webhook_retry_schedule_s) + 1
    states = {r.state for r in deliveries_of(sessions, endpoint_id=endpoint.id)}
    assert states == {"dead"}  # its queue is closed; the log stays
    for job in (queued, job_id):
        assert deliveries_of(sessions, job_id=job)[0].state == "dead"


def set_failing_since(sessions: sessionmaker[Session], endpoint_id: str, **ago: int) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(failing_since=utcnow() - timedelta(**ago))
        )


def test_retry_after_is_honoured_over_a_shorter_schedule(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver(script=[Reply(429, {"Retry-After": "1"})]) as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id, "failed"))
        waiting = deliveries_of(sessions, id=row.id)[0]
        first = attempts_of(sessions, row.id)[0]
        assert waiting.next_attempt_at is not None
        # The schedule says 0.05 s; the receiver asked for 1 s, and gets it.
        assert waiting.next_attempt_at - first.started_at >= timedelta(seconds=1)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))
    assert [r.webhook_id for r in hook.verified] == [row.id, row.id]
    assert (
        hook.received[1].headers["webhook-timestamp"]
        >= hook.received[0].headers["webhook-timestamp"]
    )


def test_a_hanging_receiver_costs_one_attempt_bounded_by_the_read_timeout(
    sessions: sessionmaker[Session], tenant: TenantKey, settings: Settings
) -> None:
    quick = fast_settings(settings, webhook_read_timeout_s=0.5)
    with receiver(script=[HANG]) as hook:
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(
            sessions, quick, HttpWebhookSender.from_settings(quick), until=settled(sessions, row.id)
        )
    first, second = attempts_of(sessions, row.id)
    assert (
        first.status_code is None and first.error is not None and first.error.startswith("timeout")
    )
    assert second.status_code == 200
    assert {r.webhook_id for r in hook.received} == {row.id}


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as elsewhere, receiver() as hook:
        hook.script = [Reply(302, {"Location": elsewhere.url()})]
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))
    assert [a.status_code for a in attempts_of(sessions, row.id)] == [302, 200]
    assert elsewhere.connections == 0


def test_a_callback_url_is_signed_with_the_tenant_callback_secret(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with transaction(sessions) as session:
        secret = endpoints.rotate_callback_secret(session, tenant.tenant_id, overlap_s=60).secret
    with receiver(secret) as hook:
        job_id = new_job(sessions, tenant.tenant_id, callback_url=hook.url("/job-done"))
        finish_job(sessions, job_id)
        (row,) = deliveries_of(sessions, job_id=job_id)
        assert (row.target, row.endpoint_id) == ("callback", None)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))
    (got,) = hook.verified
    assert got.path == "/job-done" and got.payload["data"]["job_id"] == job_id


def test_redeliver_sends_the_same_webhook_id_with_a_fresh_budget(
    sessions: sessionmaker[Session],
    tenant: TenantKey,
    hook_settings: Settings,
    sender: HttpWebhookSender,
) -> None:
    with receiver() as hook:
        hook.default = Reply(500)
        endpoint = add_endpoint(sessions, tenant.tenant_id, hook.url())
        hook.secrets.append(endpoint.secret)
        finish_job(sessions, job_id := new_job(sessions, tenant.tenant_id))
        (row,) = deliveries_of(sessions, job_id=job_id)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id))
        assert deliveries_of(sessions, id=row.id)[0].state == "dead"
        hook.default = Reply(200)  # the tenant fixed its server
        with transaction(sessions) as session:
            loaded = session.get(WebhookDelivery, row.id)
            assert loaded is not None
            deliveries.redeliver(session, loaded)
        pump(sessions, hook_settings, sender, until=settled(sessions, row.id, "succeeded"))
    assert {r.webhook_id for r in hook.verified} == {row.id}
    assert len(attempts_of(sessions, row.id)) == 6
