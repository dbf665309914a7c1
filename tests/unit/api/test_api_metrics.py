"""GET /metrics after a job ran in-process: the API's request metrics and the runner's stage metrics
in Prometheus' text format, and the optional METRICS_TOKEN."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api import create_app
from pipeline import runner
from pipeline.context import Context, build_context
from pipeline.db.models import Job
from pipeline.settings import Settings
from schemas.common import STAGES
from schemas.envelope import JobEnvelope
from tests.conftest import TenantKey
from tests.unit.api.conftest import PostTranscript

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    yield context
    context.sessions.kw["bind"].dispose()


def scrape(client: FlaskClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def run_job(ctx: Context, job_id: str) -> None:
    with ctx.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        envelope = JobEnvelope.model_validate(row.envelope)
    for stage in STAGES:
        advanced = runner.run_stage(stage, envelope, ctx)
        assert advanced is not None
        envelope = advanced.envelope


def test_metrics_show_the_requests_and_stages_of_a_job(
    client: FlaskClient, ctx: Context, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    before = scrape(client)
    job = post_transcript(tenant)
    client.get(f"/v1/jobs/{job['id']}", headers=tenant.headers)
    run_job(ctx, job["id"])
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": "/v1/jobs/<job_id>", "method": "GET", "status": "200"}
    assert grew("callintel_http_requests_total", **route) == 1  # the template, never the id
    assert grew("callintel_http_requests_total", route="/v1/jobs", method="POST", status="202") == 1
    assert grew("callintel_http_request_duration_seconds_count", route="/v1/jobs", method="POST")
    for stage in STAGES:
        done = {"stage": stage.value, "outcome": "done"}
        assert grew("callintel_stage_attempts_total", stage=stage.value) == 1
        assert grew("callintel_stage_duration_seconds_count", **done) == 1
    assert not any(job["id"] in str(labels) for _, labels in after)


def test_a_rerun_is_counted_as_skipped(
    client: FlaskClient, ctx: Context, tenant: TenantKey, post_transcript: PostTranscript
) -> None:
    job = post_transcript(tenant)
    with ctx.sessions() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        envelope = JobEnvelope.model_validate(row.envelope)
    first = STAGES[0]
    runner.run_stage(first, envelope, ctx)
    before = scrape(client)
    runner.run_stage(first, envelope, ctx)  # redelivered: its artifact exists
    after = scrape(client)
    labels = {"stage": first.value, "outcome": "skipped"}
    name = "callintel_stage_duration_seconds_count"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    attempts = "callintel_stage_attempts_total"
    assert value(after, attempts, stage=first.value) == value(before, attempts, stage=first.value)


def test_metrics_token_is_required_when_set(settings: Settings) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr("s3cret")})
    app: Flask = create_app({"TESTING": True, "SETTINGS": guarded})
    client = app.test_client()
    try:
        refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert refused.mimetype == "application/problem+json"
        assert refused.json is not None and refused.json["code"] == "unauthenticated"
        assert client.get("/metrics").status_code == 401
        assert scrape(client, Authorization="Bearer s3cret")
    finally:
        app.extensions["callintel"].engine.dispose()
