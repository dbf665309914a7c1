"""`/v1/batches` through the API: items by JSON Lines, counters, backlog, close/cancel, isolation."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.state import AppState
from pipeline.db import backlog, jobs, provider_checks
from pipeline.db.models import Job, OutboxMessage, utcnow
from pipeline.db.session import transaction
from pipeline.settings import Settings
from schemas.common import Stage
from tests.conftest import SAMPLES, TenantKey

NDJSON = "application/x-ndjson"
TURNS = [
    {"speaker": "agent", "text": "Thank you for calling."},
    {"speaker": "customer", "text": "Hi."},
]


def create(client: FlaskClient, tenant: TenantKey, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/batches", json={"name": "night", **body}, headers=tenant.headers)
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == f"/v1/batches/{response.json['id']}"  # type: ignore[index]
    return response.json  # type: ignore[return-value]


def add(client: FlaskClient, tenant: TenantKey, batch_id: str, lines: list[Any]) -> Any:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return client.post(
        f"/v1/batches/{batch_id}/items", data=body, content_type=NDJSON, headers=tenant.headers
    )


def test_items_join_the_backlog_and_bad_lines_are_reported_by_number(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    batch = create(client, tenant, call_type="collections", metadata={"site": "lisbon"})
    lines: list[Any] = [
        {"transcript": TURNS, "external_id": "c1", "idempotency_key": "k1"},
        "{not json",
        {"transcript": "Agent: Hello.\nCustomer: Hi.", "external_id": "c2"},
        {"transcript": TURNS, "upload_id": "upl_x"},
        {"upload_id": "upl_00000000000000000000000000"},
        {"key": "tenants/someone-else/uploads/x"},
    ]
    response = add(client, tenant, batch["id"], lines)
    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["line"], r["code"]) for r in body["rejected"]] == [
        (2, "invalid_json"),
        (4, "validation_error"),
        (5, "upload_not_found"),
        (6, "key_not_allowed"),
    ]
    assert [i["line"] for i in body["items"]] == [1, 3]
    assert body["batch"]["counts"] == {
        "total": 2, "backlog": 2, "running": 0, "completed": 0, "failed": 0, "cancelled": 0,
    }  # fmt: skip
    with sessions() as session:
        jobs = session.scalars(select(Job).where(Job.batch_id == batch["id"])).all()
        outbox = session.scalars(
            select(OutboxMessage).where(OutboxMessage.job_id.in_([j.id for j in jobs]))
        ).all()
    # In the backlog: nothing is published until the scheduler releases it.
    assert {j.released_at for j in jobs} == {None} and outbox == []
    assert {j.call_type for j in jobs} == {"collections"}
    assert {j.meta["site"] for j in jobs} == {"lisbon"}


def test_a_retried_line_is_not_added_twice(client: FlaskClient, tenant: TenantKey) -> None:
    batch = create(client, tenant)
    line = {"transcript": TURNS, "idempotency_key": "sha-of-the-file"}
    first = add(client, tenant, batch["id"], [line]).json
    again = add(client, tenant, batch["id"], [line, line]).json
    assert first is not None and again is not None
    assert again["duplicates"] == 2 and again["accepted"] == 0
    assert {i["job_id"] for i in again["items"]} == {first["items"][0]["job_id"]}
    assert again["batch"]["counts"]["total"] == 1


def test_the_scheduler_releases_backlog_within_the_tenant_cap(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], settings: Settings
) -> None:
    batch = create(client, tenant)
    added = add(client, tenant, batch["id"], [{"transcript": TURNS} for _ in range(5)]).json
    ids = {item["job_id"] for item in added["items"]}
    capped = settings.model_copy(update={"batch_tenant_max_in_flight": 3})
    with transaction(sessions) as session:
        released = backlog.release_due(session, capped, now=utcnow())
    mine = [j for j in released if j in ids]  # other tests' batches may share the database
    assert len(mine) == 3
    view = client.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json
    assert view is not None
    assert view["counts"]["backlog"] == 2 and view["counts"]["running"] == 3
    assert view["started_at"] is not None
    with sessions() as session:
        published = session.scalars(
            select(OutboxMessage.job_id).where(OutboxMessage.job_id.in_(mine))
        ).all()
    assert sorted(j for j in published if j) == sorted(mine)  # one start message each


def test_cancel_cancels_the_backlog_and_completes_the_batch(
    client: FlaskClient, tenant: TenantKey
) -> None:
    batch = create(client, tenant)
    add(client, tenant, batch["id"], [{"transcript": TURNS} for _ in range(3)])
    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["status"] == "cancelled" and body["counts"]["cancelled"] == 3
    assert body["finished_at"] is not None
    refused = add(client, tenant, batch["id"], [{"transcript": TURNS}])
    assert refused.status_code == 409 and refused.json["code"] == "batch_not_open"  # type: ignore[index]
    jobs = client.get("/v1/jobs?status=cancelled", headers=tenant.headers).json
    assert jobs is not None and len(jobs["data"]) >= 3


def test_closing_an_empty_batch_completes_it(client: FlaskClient, tenant: TenantKey) -> None:
    batch = create(client, tenant)
    body = client.post(f"/v1/batches/{batch['id']}/close", headers=tenant.headers).json
    assert body is not None and body["status"] == "completed"
    again = client.post(f"/v1/batches/{batch['id']}/close", headers=tenant.headers)
    assert again.status_code == 200 and again.json["status"] == "completed"  # type: ignore[index]


def test_a_job_posted_with_batch_id_joins_the_backlog(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    batch = create(client, tenant)
    body = {"transcript": TURNS, "batch_id": batch["id"]}
    response = client.post("/v1/jobs", json=body, headers=tenant.headers)
    assert response.status_code == 202
    view = client.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json
    assert view is not None and view["counts"]["backlog"] == 1
    listed = client.get(view["links"]["jobs"], headers=tenant.headers).json
    assert listed is not None
    assert [j["id"] for j in listed["data"]] == [response.json["id"]]  # type: ignore[index]
    theirs = client.post("/v1/jobs", json=body, headers=other_tenant.headers)
    assert theirs.status_code == 404 and theirs.json["code"] == "not_found"  # type: ignore[index]


def test_another_tenants_batch_is_a_404_everywhere(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    batch = create(client, tenant)
    missing = client.get("/v1/batches/bat_00000000000000000000000000", headers=other_tenant.headers)
    paths = [
        ("get", f"/v1/batches/{batch['id']}"),
        ("post", f"/v1/batches/{batch['id']}/close"),
        ("post", f"/v1/batches/{batch['id']}/cancel"),
        ("post", f"/v1/batches/{batch['id']}/retry-failed"),
        ("get", f"/v1/batches/{batch['id']}/results"),
    ]
    for method, path in paths:
        response = getattr(client, method)(path, headers=other_tenant.headers)
        assert response.status_code == 404
        assert response.get_data() == missing.get_data()
    items = add(client, other_tenant, batch["id"], [{"transcript": TURNS}])
    assert items.status_code == 404


def test_list_by_name_with_a_cursor(client: FlaskClient, tenant: TenantKey) -> None:
    ids = [create(client, tenant, name="nightly-2026-12-04")["id"] for _ in range(3)]
    first = client.get("/v1/batches?name=nightly-2026-12-04&limit=2", headers=tenant.headers).json
    assert first is not None and first["has_more"]
    cursor = first["next_cursor"]
    second = client.get(
        f"/v1/batches?name=nightly-2026-12-04&limit=2&cursor={cursor}", headers=tenant.headers
    ).json
    assert second is not None and not second["has_more"]
    assert [b["id"] for b in first["data"] + second["data"]] == ids[::-1]


def test_bad_requests_are_problems(client: FlaskClient, tenant: TenantKey) -> None:
    assert client.post("/v1/batches", json={}, headers=tenant.headers).status_code == 422
    source = {"storage_prefix": "s3://elsewhere/2026-12-04/"}
    refused = client.post(
        "/v1/batches", json={"name": "n", "source": source}, headers=tenant.headers
    )
    assert refused.status_code == 422
    assert refused.json["code"] == "import_prefix_not_allowed"  # type: ignore[index]
    batch = create(client, tenant)
    wrong_type = client.post(
        f"/v1/batches/{batch['id']}/items", json={"transcript": TURNS}, headers=tenant.headers
    )
    assert wrong_type.status_code == 415
    assert wrong_type.headers["Content-Type"] == "application/problem+json"
    bad_format = client.get(f"/v1/batches/{batch['id']}/results?format=xml", headers=tenant.headers)
    assert bad_format.status_code == 400


def test_results_before_anything_ran(client: FlaskClient, tenant: TenantKey) -> None:
    batch = create(client, tenant)
    add(client, tenant, batch["id"], [{"transcript": TURNS, "external_id": "c1"}])
    csv_body = client.get(f"/v1/batches/{batch['id']}/results?format=csv", headers=tenant.headers)
    assert csv_body.mimetype == "text/csv"
    rows = csv_body.get_data(as_text=True).splitlines()
    assert rows[0].startswith("external_id,job_id,status,error_code")
    assert rows[1].startswith("c1,job_") and ",queued," in rows[1]
    jsonl = client.get(f"/v1/batches/{batch['id']}/results", headers=tenant.headers)
    line = json.loads(jsonl.get_data(as_text=True).splitlines()[0])
    assert line["object"] == "batch_item" and line["status"] == "queued"


def test_a_provider_answering_429_gets_no_new_items_until_its_retries_pass(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], settings: Settings
) -> None:
    from pipeline.db import jobs as job_repo
    from pipeline.db.tenant_config import put_config
    from schemas.common import Stage
    from schemas.tenant import ProviderChoice, TenantConfig

    with transaction(sessions) as session:
        put_config(
            session, tenant.tenant_id, TenantConfig(providers=ProviderChoice(analyzer="gemini")),
            author="test",
        )  # fmt: skip
    batch = create(client, tenant)
    ids = [
        i["job_id"]
        for i in add(client, tenant, batch["id"], [{"transcript": TURNS}] * 3).json["items"]
    ]
    with transaction(sessions) as session:  # one item of the batch is backing off from Gemini's 429
        session.execute(update(Job).where(Job.id == ids[0]).values(released_at=utcnow()))
        step = job_repo.get_step(session, ids[0], Stage.ANALYZE)
        step.state, step.error_code = "retrying", "provider_rate_limited"
        assert backlog.throttled_lanes(session) == {"gemini"}
    with transaction(sessions) as session:
        released = backlog.release_due(session, settings, now=utcnow())
    assert not set(released) & set(ids)
    with transaction(sessions) as session:  # the retry went through
        job_repo.get_step(session, ids[0], Stage.ANALYZE).state = "succeeded"
    with transaction(sessions) as session:
        released = backlog.release_due(session, settings, now=utcnow())
    assert set(ids[1:]) <= set(released)


def test_a_retried_item_submits_its_provider_job_anew_and_completions_add_up_the_cost(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], settings: Settings
) -> None:
    batch = create(client, tenant)
    [failing, done] = [
        i["job_id"]
        for i in add(client, tenant, batch["id"], [{"transcript": TURNS}] * 2).json["items"]
    ]  # type: ignore[index]
    with transaction(sessions) as session:
        backlog.release_due(session, settings, now=utcnow())
    with transaction(sessions) as session:
        provider_checks.record_submission(session, failing, Stage.ANALYZE, ref="batches/expired1")
        job = session.get(Job, failing)
        assert job is not None
        jobs.fail_job(session, job, Stage.ANALYZE, code="gemini_batch_expired", message="expired", settings=settings)  # fmt: skip
        finished = session.get(Job, done)
        assert finished is not None
        jobs.complete_job(session, finished, schema_version="1", body={}, settings=settings, cost_usd=0.25, saved_usd=0.25)  # fmt: skip
    view = client.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json
    assert view is not None
    assert (view["cost_usd"], view["saved_usd"]) == (0.25, 0.25)
    assert view["failures"] == [{"code": "gemini_batch_expired", "count": 1}]

    assert client.post(f"/v1/batches/{batch['id']}/retry-failed", headers=tenant.headers).status_code == 200  # fmt: skip

    with sessions() as session:
        assert provider_checks.submission(session, failing, Stage.ANALYZE) is None


def test_items_parked_on_a_provider_batch_job_free_their_slot(
    client: FlaskClient, tenant: TenantKey, sessions: sessionmaker[Session], settings: Settings
) -> None:
    from pipeline.db import jobs as job_repo
    from schemas.common import Stage

    batch = create(client, tenant)
    ids = [
        i["job_id"]
        for i in add(client, tenant, batch["id"], [{"transcript": TURNS}] * 4).json["items"]
    ]
    capped = settings.model_copy(update={"batch_tenant_max_in_flight": 2})
    with transaction(sessions) as session:
        first = [j for j in backlog.release_due(session, capped, now=utcnow()) if j in ids]
    assert len(first) == 2
    with transaction(sessions) as session:  # nothing more while both hold their slots
        assert not set(backlog.release_due(session, capped, now=utcnow())) & set(ids)
    with transaction(sessions) as session:  # both now wait on Gemini batch jobs
        for job_id in first:
            job_repo.get_step(session, job_id, Stage.ANALYZE).state = "waiting"
    with transaction(sessions) as session:
        second = set(backlog.release_due(session, capped, now=utcnow())) & set(ids)
    assert second == set(ids) - set(first)


def test_an_over_long_line_is_rejected_and_the_next_one_added(
    client: FlaskClient, tenant: TenantKey
) -> None:
    batch = create(client, tenant)
    huge = json.dumps({"transcript": "Agent: " + "x" * (1024 * 1024 + 10)})
    body = add(client, tenant, batch["id"], [huge, {"transcript": TURNS}]).json
    assert body is not None
    assert [(r["line"], r["code"]) for r in body["rejected"]] == [(1, "line_too_long")]
    assert [i["line"] for i in body["items"]] == [2]


def test_bad_channel_maps_are_refused_for_batches_and_their_items(
    client: FlaskClient, tenant: TenantKey, app_state: AppState
) -> None:
    for bad in ({"-2": "agent"}, {"0": "agent", "1": "agent"}):
        refused = client.post(
            "/v1/batches", json={"name": "n", "channel_map": bad}, headers=tenant.headers
        )
        assert refused.status_code == 422, refused.json
        assert refused.json["errors"][0]["loc"] == "channel_map"  # type: ignore[index]
    batch = create(client, tenant)
    key = f"tenants/{tenant.tenant_id}/imports/stereo.wav"
    app_state.blobs.put_bytes(key, (SAMPLES / "stereo.wav").read_bytes(), content_type="audio/wav")
    lines = [
        {"key": key, "channel_map": {"0": "agent", "2": "customer"}},
        {"transcript": TURNS, "channel_map": {"-1": "agent"}},
        {"key": key, "channel_map": {"1": "agent", "0": "customer"}},
    ]
    body = add(client, tenant, batch["id"], lines).json
    assert [(r["line"], r["code"]) for r in body["rejected"]] == [
        (1, "validation_error"),
        (2, "validation_error"),
    ]
    assert "channel 2, but the recording has only channels 0-1" in body["rejected"][0]["detail"]
    assert "negative" in body["rejected"][1]["detail"]
    assert [i["line"] for i in body["items"]] == [3]
