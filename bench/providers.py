"""Cloud providers never hold a worker slot: N audio jobs against slow fake providers.

Fake AssemblyAI (answers `--aai-s` after submission, 20 s) and fake Gemini (`--gemini-s` per
request, 2 s) run on 127.0.0.1 and are driven by the real SDKs through our adapters. Two worker
processes, shaped like docker-compose.yml: an I/O worker (thread pool, 32 slots: transcribe,
analyze, webhooks) and a CPU worker (prefork, 2 slots: default, asr-local), plus beat (re-checks
waiting provider jobs). One job is run alone first (its latency), then N jobs are submitted at once
through the API; prints the makespan and its ratio to the single job's latency (goal ≤ 1.5).

    .venv/bin/python bench/providers.py               # 200 jobs
    .venv/bin/python bench/providers.py --jobs 20     # quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
from _support import (
    DEFAULT_REDIS_URL,
    ROOT,
    base_env,
    cleanup_on_sigterm,
    migrated_database,
    private_redis,
    show_log_on_error,
    spawn,
    wait_until,
)

from tests.support.fake_assemblyai import FakeAssemblyAI
from tests.support.fake_gemini import FakeGemini

GOAL = 1.5
SAMPLE = ROOT / "samples" / "stereo.wav"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--aai-s", type=float, default=20.0, help="fake AssemblyAI latency")
    parser.add_argument("--gemini-s", type=float, default=2.0, help="fake Gemini latency")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed before and after")
    return parser.parse_args()


def env_for(settings: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        secret = getattr(value, "get_secret_value", None)
        values[name.upper()] = (
            secret() if secret else json.dumps(value) if isinstance(value, list) else str(value)
        )
    return base_env(**values)


def workers(stack: ExitStack, env: dict[str, str], tmp: Path) -> None:
    celery = [sys.executable, "-m", "celery", "-A", "workers.app:app"]
    io = [*celery, "worker", "-Q", "transcribe,analyze,webhooks,maintenance", "-P", "threads", "-c", "32", "-l", "INFO",
          "-n", "io@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    cpu = [*celery, "worker", "-Q", "default,asr-local", "-P", "prefork", "-c", "2", "-l", "INFO",
           "-n", "cpu@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    beat = [*celery, "beat", "-s", str(tmp / "beat-schedule")]
    for name, cmd in (("io", io), ("cpu", cpu), ("beat", beat)):
        log = tmp / f"{name}.log"
        stack.enter_context(show_log_on_error(log))
        stack.enter_context(spawn(cmd, env=env, log=log))
        if name != "beat":
            wait_until(
                lambda log=log: b"ready." in log.read_bytes(), timeout=60, what=f"{name} ready"
            )


def cloud_tenant(database_url: str) -> str:
    from pipeline.db.session import make_engine, make_session_factory, transaction
    from pipeline.db.tenants import create_key, create_tenant

    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            config = {"providers": {"transcriber": "assemblyai", "analyzer": "gemini"}}
            tenant = create_tenant(session, name="bench-cloud", config=config)
            return create_key(session, tenant_id=tenant.id).secret
    finally:
        engine.dispose()


def submit(client: Any, key: str, count: int) -> None:
    data = SAMPLE.read_bytes()
    for _ in range(count):
        from io import BytesIO

        response = client.post(
            "/v1/jobs",
            data={"file": (BytesIO(data), "call.wav")},
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs: {response.status_code} {response.get_json()}")


def wait_completed(conn: psycopg.Connection[Any], total: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'),"
            " count(*) FILTER (WHERE status = 'failed') FROM jobs"
        ).fetchone()
        assert row is not None
        if row[1]:
            failed = conn.execute(
                "SELECT error_code, error_message FROM jobs WHERE status = 'failed' LIMIT 3"
            ).fetchall()
            raise RuntimeError(f"{row[1]} job(s) failed: {failed}")
        if row[0] >= total:
            return
        time.sleep(0.2)
    raise TimeoutError(f"not all {total} jobs completed in {timeout} s")


def main() -> None:
    args = parse_args()
    cleanup_on_sigterm()
    # Celery reads its broker from the environment once, when workers.app is first imported.
    os.environ["REDIS_URL"] = args.redis_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from pydantic import SecretStr

    from api import create_app
    from pipeline.settings import Settings

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="callintel-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        aai = stack.enter_context(FakeAssemblyAI(complete_after_s=args.aai_s))
        gemini = stack.enter_context(FakeGemini(latency_s=args.gemini_s).running())
        stack.enter_context(private_redis(args.redis_url))
        db_url = stack.enter_context(migrated_database())
        settings = Settings(
            database_url=db_url,
            redis_url=args.redis_url,
            storage_url=f"file://{tmp / 'blobs'}",
            log_level="WARNING",
            assemblyai_api_key=SecretStr(aai.api_key),
            assemblyai_base_url=aai.url,
            gemini_api_key=SecretStr(gemini.api_key),
            gemini_base_url=gemini.base_url,
            rate_limit_submit_per_s=0,  # one tenant submits every job at once
        )
        workers(stack, env_for(settings), tmp)
        key = cloud_tenant(db_url)
        client = create_app({"SETTINGS": settings}).test_client()
        conn = stack.enter_context(psycopg.connect(db_url.replace("+psycopg", ""), autocommit=True))
        began = time.perf_counter()
        submit(client, key, 1)
        wait_completed(conn, 1, timeout=args.timeout)
        single = time.perf_counter() - began
        began = time.perf_counter()
        submit(client, key, args.jobs)
        submitted = time.perf_counter() - began
        wait_completed(conn, 1 + args.jobs, timeout=args.timeout)
        makespan = time.perf_counter() - began
        report(args, conn, single=single, makespan=makespan, submitted=submitted)


def report(
    args: argparse.Namespace,
    conn: psycopg.Connection[Any],
    *,
    single: float,
    makespan: float,
    submitted: float,
) -> None:
    row = conn.execute(
        "SELECT avg(attempts), max(attempts) FROM job_steps WHERE stage = 'transcribe'"
    ).fetchone()
    ratio = makespan / single
    print(f"fake AssemblyAI {args.aai_s:.0f} s, fake Gemini {args.gemini_s:.0f} s per request")
    print(f"  one job alone:      {single:6.1f} s")
    print(
        f"  {args.jobs} jobs at once:   {makespan:6.1f} s makespan (submitting took {submitted:.1f} s)"
    )
    print(
        f"  ratio makespan / single: {ratio:.2f} (goal ≤ {GOAL}: {'met' if ratio <= GOAL else 'MISSED'})"
    )
    assert row is not None
    print(
        f"  transcribe attempts per job: avg {float(row[0]):.2f}, max {row[1]} (re-checks are not attempts)"
    )


if __name__ == "__main__":
    main()
