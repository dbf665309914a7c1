"""A night's batch through a real worker with beat: the backlog scheduler releases it, one-off
jobs go first, bad items fail alone, the results come out as one file, and a server-side import
that dies mid-listing resumes with exactly one job per object."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import batch_import
from pipeline.adapters.storage import blob_store_from_settings
from pipeline.db import batches
from pipeline.db.batch_models import Batch
from pipeline.db.models import Job, utcnow
from pipeline.db.session import transaction
from pipeline.db.tenant_config import put_config
from pipeline.settings import Settings
from schemas.tenant import BatchPolicy, TenantConfig
from tests.conftest import TenantKey, settings_env
from tests.integration.conftest import ALL_QUEUES, sample
from tests.support.services import celery_worker

pytestmark = pytest.mark.integration
NDJSON = "application/x-ndjson"
TURNS = [
    {"speaker": "agent", "text": "Thank you for calling Acme, how can I help you today?"},
    {"speaker": "customer", "text": "I want to check my balance please."},
]


@pytest.fixture(scope="module")
def scheduled_worker(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path_factory.mktemp("batch-worker") / "worker.log"
    env = settings_env(settings)
    env["BATCH_MAX_IN_FLIGHT"] = "200"  # unit tests leave released items nobody runs
    env["BATCH_TENANT_MAX_IN_FLIGHT"] = "4"
    with celery_worker(env, log=log, queues=ALL_QUEUES, beat=True) as proc:
        yield proc


def add(client: FlaskClient, tenant: TenantKey, batch_id: str, lines: list[dict[str, Any]]) -> Any:
    body = "".join(json.dumps(line) + "\n" for line in lines)
    response = client.post(
        f"/v1/batches/{batch_id}/items", data=body, content_type=NDJSON, headers=tenant.headers
    )
    assert response.status_code == 200, response.json
    return response.json


def wait_batch(
    client: FlaskClient, tenant: TenantKey, batch_id: str, *, timeout: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/v1/batches/{batch_id}", headers=tenant.headers).json  # type: ignore[assignment]
        if view["status"] in ("completed", "cancelled") and view["finished_at"]:
            return view
        time.sleep(0.5)
    raise AssertionError(f"batch not finished: {view}")


def upload(client: FlaskClient, tenant: TenantKey, data: bytes) -> str:
    """A direct upload, the way `callintel bulk` does it (S3 presigned PUT to moto)."""
    import requests

    made = client.post("/v1/uploads", json={"bytes": len(data)}, headers=tenant.headers).json
    assert made is not None
    put = requests.put(made["url"], data=data, headers=made["headers"], timeout=30)
    assert put.status_code in (200, 201), put.text
    return str(made["id"])


def test_an_import_that_dies_mid_listing_resumes_with_one_job_per_object(
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    settings: Settings,
    s3_endpoint: str,
) -> None:
    bucket = "acme-exports"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    wav = sample("stereo.wav").read_bytes()
    for i in range(11):
        s3.put_object(Bucket=bucket, Key=f"2026-12-04/call-{i:02d}.wav", Body=wav)
    s3.put_object(Bucket=bucket, Key="2026-12-04/readme.txt", Body=b"not audio")
    config = TenantConfig(batches=BatchPolicy(import_prefixes=[f"s3://{bucket}/2026-12-04/"]))
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, config, author="test")
    source = {"storage_prefix": f"s3://{bucket}/2026-12-04/"}
    # Made in the database, not through the API, so no task starts the import behind our back.
    with transaction(sessions) as session:
        batch_id = batches.create_batch(session, tenant.tenant_id, name="import", source=source).id
    blobs = blob_store_from_settings(settings)
    src = batch_import.source_of(sessions, settings, batch_id)

    # An importer takes the lease, saves one page of 4, then dies (its lease is never released).
    state = batch_import.claim(sessions, batch_id)
    assert state is not None
    token = batch_import.import_page(
        sessions, settings, blobs, src, batch_id=batch_id, token=None, page_size=4
    )
    assert token is not None
    # It had listed and copied the next page too, but died before saving it: redone later.
    batch_import.import_page(
        sessions, settings, blobs, src, batch_id=batch_id, token=token, page_size=4
    )
    with transaction(sessions) as session:  # as if its page was never saved
        batch = session.get(Batch, batch_id)
        assert batch is not None and batch.import_state is not None
        batch.import_state = {**batch.import_state, "token": token, "done": False}
    assert batch_import.stalled(sessions) == []  # its lease still holds
    with transaction(sessions) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None and batch.import_state is not None
        expired = (utcnow() - timedelta(seconds=1)).isoformat()
        batch.import_state = {**batch.import_state, "lease_until": expired}
    assert batch_id in batch_import.stalled(sessions)
    assert batch_import.run(sessions, settings, blobs, batch_id) is False

    with sessions() as session:
        keys = session.scalars(select(Job.external_id).where(Job.batch_id == batch_id)).all()
        batch = session.get(Batch, batch_id)
    assert sorted(keys) == sorted([f"call-{i:02d}.wav" for i in range(11)] + ["readme.txt"])
    assert batch is not None and batch.total == 12 and batch.status == "closed"
    assert batch.failure_codes == {"unsupported_media_type": 1}


def test_a_batch_with_bad_items_completes_and_exports(
    client: FlaskClient, tenant: TenantKey, scheduled_worker: subprocess.Popen[bytes]
) -> None:
    made = client.post(
        "/v1/batches", json={"name": "night-1", "call_type": "support"}, headers=tenant.headers
    ).json
    assert made is not None
    batch_id = made["id"]
    good = [{"transcript": TURNS, "external_id": f"call-{i}"} for i in range(6)]
    audio = upload(client, tenant, sample("stereo.wav").read_bytes())
    broken = upload(
        client, tenant, b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40
    )  # sniffed as WAV, not decodable
    text = upload(client, tenant, b"just some text, not audio")
    result = add(
        client,
        tenant,
        batch_id,
        [*good, {"upload_id": audio, "external_id": "audio-1"},
         {"upload_id": broken, "external_id": "broken-1"},
         {"upload_id": text, "external_id": "text-1"}],
    )  # fmt: skip
    assert result["accepted"] == 8
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [(9, "unsupported_media_type")]
    assert client.post(f"/v1/batches/{batch_id}/close", headers=tenant.headers).status_code == 200

    view = wait_batch(client, tenant, batch_id)
    assert view["status"] == "completed"
    assert view["counts"]["completed"] == 7 and view["counts"]["failed"] == 1
    assert view["failures"] == [{"code": "invalid_audio", "count": 1}]
    assert view["items_per_s"] > 0

    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/v1/batches/{batch_id}/results?format=csv", headers=tenant.headers).get_data(as_text=True)
    )))  # fmt: skip
    by_id = {r["external_id"]: r for r in rows}
    assert len(rows) == 8
    assert (
        by_id["broken-1"]["status"] == "failed"
        and by_id["broken-1"]["error_code"] == "invalid_audio"
    )
    assert by_id["audio-1"]["status"] == "completed" and by_id["audio-1"]["duration_s"]
    assert by_id["call-0"]["score"] != "" and by_id["call-0"]["band"] != ""
    lines = client.get(f"/v1/batches/{batch_id}/results", headers=tenant.headers).get_data(
        as_text=True
    )
    parsed = [json.loads(line) for line in lines.splitlines()]
    assert sum(1 for p in parsed if p.get("schema_version")) == 7  # CallResult documents

    retried = client.post(f"/v1/batches/{batch_id}/retry-failed", headers=tenant.headers).json
    assert (
        retried is not None and retried["counts"]["failed"] == 0 and retried["status"] == "closed"
    )
    again = wait_batch(client, tenant, batch_id)
    assert again["counts"]["failed"] == 1  # still not decodable: it fails again, alone


def test_one_off_jobs_go_ahead_of_a_batch_backlog(
    client: FlaskClient,
    tenant: TenantKey,
    other_tenant: TenantKey,
    sessions: sessionmaker[Session],
    scheduled_worker: subprocess.Popen[bytes],
) -> None:
    made = client.post("/v1/batches", json={"name": "flood"}, headers=tenant.headers).json
    assert made is not None
    add(client, tenant, made["id"], [{"transcript": TURNS} for _ in range(40)])
    client.post(f"/v1/batches/{made['id']}/close", headers=tenant.headers)
    time.sleep(2)  # the flood is running
    one_off = client.post("/v1/jobs", json={"transcript": TURNS}, headers=other_tenant.headers).json
    assert one_off is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{one_off['id']}", headers=other_tenant.headers).json
        if status is not None and status["status"] == "completed":
            break
        time.sleep(0.2)
    done_at = datetime.fromisoformat(status["completed_at"].replace("Z", "+00:00"))  # type: ignore[index]
    with sessions() as session:
        finished_before = session.scalar(
            select(func.count()).where(
                Job.batch_id == made["id"], Job.completed_at.is_not(None),
                Job.completed_at < done_at,
            )
        )  # fmt: skip
        batch = session.get(Batch, made["id"])
        assert batch is not None
        left = batch.total - batch.completed
    # The tenant cap (4) keeps the flood's released work short, and priority puts the one-off
    # first at each stage: most of the flood is still waiting when the one-off is done.
    assert status["status"] == "completed"  # type: ignore[index]
    assert left > 0, "the one-off finished only after the whole flood"
    assert finished_before is not None and finished_before < 40
    wait_batch(client, tenant, made["id"])


def test_an_import_through_the_api_makes_one_job_per_object_and_completes(
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    s3_endpoint: str,
    scheduled_worker: subprocess.Popen[bytes],
) -> None:
    bucket = "acme-nightly"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"d/call-{i}.wav", Body=sample("stereo.wav").read_bytes())
    config = TenantConfig(batches=BatchPolicy(import_prefixes=[f"s3://{bucket}/d/"]))
    with transaction(sessions) as session:
        put_config(session, tenant.tenant_id, config, author="test")
    source = {"storage_prefix": f"s3://{bucket}/d/"}
    made = client.post(
        "/v1/batches", json={"name": "nightly", "source": source}, headers=tenant.headers
    ).json
    assert made is not None
    view = wait_batch(client, tenant, made["id"])
    assert view["counts"]["completed"] == 3 and view["counts"]["total"] == 3


def test_bulk_cli_against_the_real_api_submits_each_file_once_and_downloads_results(
    app: Flask,
    client: FlaskClient,
    tenant: TenantKey,
    tmp_path: Path,
    scheduled_worker: subprocess.Popen[bytes],
) -> None:
    from click.testing import CliRunner

    from api.cli import cli
    from tests.support.live_server import live_server

    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "a.wav").write_bytes(sample("stereo.wav").read_bytes())
    for i in range(3):
        (folder / f"t{i}.txt").write_text(
            f"Agent: Thank you for calling, call {i}.\nCustomer: Hi.\n"
        )
    state = tmp_path / "state.json"
    env = {"CALLINTEL_API_KEY": tenant.key}
    with live_server(app) as url:
        args = ["bulk", "submit", str(folder), "--batch", "cli-night", "--url", url]
        first = CliRunner().invoke(cli, [*args, "--state-file", str(state)], env=env)
        assert first.exit_code == 0, first.output
        # Lost state file: a re-run adds nothing (content-derived idempotency keys).
        state.unlink()
        again = CliRunner().invoke(cli, [*args, "--state-file", str(state)], env=env)
        assert again.exit_code == 0, again.output
        listed = client.get("/v1/batches?name=cli-night", headers=tenant.headers).json
        assert listed is not None and len(listed["data"]) == 1
        batch_id = listed["data"][0]["id"]
        view = wait_batch(client, tenant, batch_id)
        assert view["counts"]["total"] == 4 and view["counts"]["completed"] == 4
        out = tmp_path / "night.csv"
        results = CliRunner().invoke(
            cli, ["bulk", "results", "cli-night", "-o", str(out), "--url", url], env=env
        )
        assert results.exit_code == 0, results.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["external_id"] for r in rows) == ["a.wav", "t0.txt", "t1.txt", "t2.txt"]
    assert {r["status"] for r in rows} == {"completed"}
