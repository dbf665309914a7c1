"""Real services for tests: a private PostgreSQL database, a Redis database, moto's S3 server, workers.

PostgreSQL and Redis are the machine's (127.0.0.1:5432 and :6379) when they answer; otherwise, or
with CALLINTEL_TEST_EMBEDDED=1, the session starts its own from the packages that carry them
(pipeline/embedded_services.py) and they die with it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pipeline.embedded_services import EmbeddedPostgres, EmbeddedRedis, free_port, port_answers

ROOT = Path(__file__).resolve().parents[2]
# Every queue a deployment consumes (celeryconfig.py routes, workers/workflow.py queues).
ALL_QUEUES = "transcribe,asr-local,analyze,default,webhooks,maintenance"
MACHINE_PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
MACHINE_REDIS = "redis://127.0.0.1:6379"
_embedded: list[EmbeddedPostgres | EmbeddedRedis] = []  # kept referenced for the whole session
_scratch_dirs: list[Path] = []


def _want_embedded(port: int) -> bool:
    return os.environ.get("CALLINTEL_TEST_EMBEDDED") == "1" or not port_answers(port)


def ensure_test_services() -> None:
    """Point TEST_PG_ADMIN and TEST_REDIS_BASE at servers that answer, starting embedded ones.

    Idempotent per process tree: the variables, once set, are inherited and win.
    """
    if "TEST_PG_ADMIN" not in os.environ:
        if _want_embedded(5432):
            pg = EmbeddedPostgres(_scratch() / "pg", free_port(), durable=False)
            pg.start()
            _embedded.append(pg)
            os.environ["TEST_PG_ADMIN"] = pg.admin_dsn
        else:
            os.environ["TEST_PG_ADMIN"] = MACHINE_PG_ADMIN
    if "TEST_REDIS_BASE" not in os.environ:
        if _want_embedded(6379):
            server = EmbeddedRedis(_scratch() / "redis", free_port())
            server.start()
            _embedded.append(server)
            os.environ["TEST_REDIS_BASE"] = server.url.removesuffix("/0")
        else:
            os.environ["TEST_REDIS_BASE"] = MACHINE_REDIS


def _scratch() -> Path:
    """A temporary folder for the embedded servers' data, removed after they stop at exit."""
    if not _scratch_dirs:
        _scratch_dirs.append(Path(tempfile.mkdtemp(prefix="callintel-test-services-")))
        atexit.register(_stop_embedded)
    return _scratch_dirs[0]


def _stop_embedded() -> None:
    for server in reversed(_embedded):
        server.stop()
    for folder in _scratch_dirs:
        shutil.rmtree(folder, ignore_errors=True)


def pg_admin() -> str:
    return os.environ.get("TEST_PG_ADMIN", MACHINE_PG_ADMIN)


def claim_redis_db(base_url: str | None = None) -> str:
    """A Redis database number no other test session is using (a lock key per number in DB 0).

    Sessions run side by side (developers, CI, benchmarks) and each flushes its own database.
    """
    import redis

    base_url = base_url or os.environ.get("TEST_REDIS_BASE", MACHINE_REDIS)
    client = redis.Redis.from_url(f"{base_url}/0")
    try:
        for number in range(1, 16):
            if client.set(f"callintel:test-db:{number}", os.getpid(), nx=True, ex=3 * 3600):
                return f"{base_url}/{number}"
    finally:
        client.close()
    raise RuntimeError("no free Redis database: are 15 test sessions running?")


def release_redis_db(url: str) -> None:
    import redis

    base, _, number = url.rpartition("/")
    client = redis.Redis.from_url(f"{base}/0")
    client.delete(f"callintel:test-db:{number}")
    client.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"callintel_test_{uuid.uuid4().hex[:10]}"
    admin = pg_admin()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(p.split("=", 1) for p in admin.split())
    url = f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def celery_worker(
    env: dict[str, str], *, log: Path, queues: str, concurrency: int = 2, beat: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process (own process group, so the whole tree can be killed).

    `beat` embeds the beat scheduler (`-B`), for tests of work scheduled from the database.
    """
    args = [sys.executable, "-m", "celery", "-A", "workers.app:app", "worker", "-Q", queues,
            "-P", "prefork", "-c", str(concurrency), "-l", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if beat:
        args += ["-B", "-s", str(log.with_suffix(".beat-schedule"))]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_log(log, "ready.", proc=proc, timeout=60)
        yield proc
    finally:
        stop_group(proc)


def wait_for_log(log: Path, needle: str, *, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"{needle!r} not seen in {log} after {timeout} s")


def stop_group(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20
) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
