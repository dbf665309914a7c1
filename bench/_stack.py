"""The running pieces the batch benchmarks share: the API under gunicorn, celery workers (with or
without beat), moto's S3 server, tenants with keys, and a psycopg connection for counting rows.

Every piece is a context manager entered on the caller's ExitStack, so processes stop (their whole
process group) even when the benchmark fails.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from _support import base_env, free_port, show_log_on_error, spawn, wait_http_ok, wait_until

ALL_QUEUES = "transcribe,asr-local,analyze,default,webhooks,maintenance"
# Benches measure capacity, not the per-tenant rate limits (docs/rate-limits.md): one tenant floods.
NO_RATE_LIMITS = {
    f"RATE_LIMIT_{name}_PER_S": "0" for name in ("SUBMIT", "UPLOAD", "RESCORE", "BATCH")
}


@dataclass(frozen=True)
class Tenant:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_tenant(database_url: str, name: str, config: Any = None) -> Tenant:
    """A tenant and an API key made directly in the database; `config` a schemas.tenant.TenantConfig."""
    from pipeline.db.session import make_engine, make_session_factory, transaction
    from pipeline.db.tenant_config import put_config
    from pipeline.db.tenants import create_key, create_tenant

    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            tenant = create_tenant(session, name=name)
            key = create_key(session, tenant_id=tenant.id).secret
            tenant_id = tenant.id
        if config is not None:
            with transaction(sessions) as session:
                put_config(session, tenant_id, config, author="bench")
        return Tenant(tenant_id, key)
    finally:
        engine.dispose()


def service_env(
    *,
    database_url: str,
    redis_url: str,
    storage_url: str,
    s3_endpoint: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """What the API and the workers read (pipeline/settings.py), plus `extra` (e.g. SCHEDULER_TICK_S)."""
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STORAGE_URL=storage_url,
        LOG_LEVEL="WARNING",
        **{**NO_RATE_LIMITS, **extra},
    )
    if s3_endpoint:
        env["S3_ENDPOINT_URL"] = s3_endpoint
    return env


def start_api(
    stack: ExitStack, env: dict[str, str], tmp: Path, *, workers: int = 1, threads: int = 8
) -> tuple[str, Any]:
    """gunicorn (gthread, as docker-compose.yml runs it) on a free port; (base URL, arbiter Popen)."""
    port = free_port()
    log = tmp / "gunicorn.log"
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--worker-class", "gthread",
           "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "120",
           "api:create_app()"]  # fmt: skip
    stack.enter_context(show_log_on_error(log))
    proc = stack.enter_context(spawn(cmd, env=env, log=log))
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/healthz", timeout=60, proc=proc, log=log)
    return url, proc


def worker_cmd(
    queues: str, *, concurrency: int = 2, beat: bool = False, tmp: Path | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "celery", "-A", "workers.app:app", "worker", "-Q", queues,
           "-P", "prefork", "-c", str(concurrency), "-l", "INFO",
           "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if beat:
        assert tmp is not None
        cmd += ["-B", "-s", str(tmp / f"beat-{uuid.uuid4().hex[:6]}")]
    return cmd


def start_worker(stack: ExitStack, cmd: list[str], env: dict[str, str], log: Path) -> Any:
    """A celery worker in its own process group; waits for `ready.`; returns the Popen."""
    stack.enter_context(show_log_on_error(log))
    proc = stack.enter_context(spawn(cmd, env=env, log=log))
    wait_until(
        lambda: "ready." in log.read_text(errors="replace"),
        what=f"worker ({log.name})",
        timeout=90,
        proc=proc,
        log=log,
        interval=0.2,
    )
    return proc


def start_moto(stack: ExitStack, tmp: Path, *buckets: str) -> str:
    """moto's S3 server as a child process (its own core, not our GIL); returns the endpoint."""
    port = free_port()
    log = tmp / "moto.log"
    proc = stack.enter_context(
        spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=base_env(),
            log=log,
        )
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{endpoint}/moto-api/", timeout=60, proc=proc, log=log)
    for bucket in buckets:
        s3_client(endpoint).create_bucket(Bucket=bucket)
    return endpoint


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client on moto (boto3 lives behind the adapter, as bench/intake.py does it)."""
    from pipeline.adapters.s3 import S3BlobStore

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto's fake keys, as base_env's
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return S3BlobStore(bucket="unused", endpoint_url=endpoint, region="us-east-1").client


def connect(database_url: str) -> psycopg.Connection[Any]:
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True)


def scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def announce_load() -> float:
    """Print the load average (figures compare only on a quiet machine); the run's start time."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at start {load} (2 cores: figures are only comparable on a quiet machine)")
    return time.perf_counter()


def bench_redis(stack: ExitStack, given: str | None) -> str:
    """The Redis URL to use (a claimed private database unless one is given), set as REDIS_URL."""
    from tests.support.services import claim_redis_db, release_redis_db

    url = given
    if url is None:
        url = claim_redis_db()
        stack.callback(release_redis_db, url)
    os.environ["REDIS_URL"] = url
    return url
