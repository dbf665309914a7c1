"""Real services for tests: a private PostgreSQL database, a Redis database, moto's S3 server, workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def claim_redis_db(base_url: str = "redis://127.0.0.1:6379") -> str:
    """A Redis database number no other test session is using (a lock key per number in DB 0).

    Sessions run side by side (developers, CI, benchmarks) and each flushes its own database.
    """
    import redis

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"callintel_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = dict(p.split("=", 1) for p in PG_ADMIN.split())
    url = f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
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
