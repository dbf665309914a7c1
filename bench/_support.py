"""Shared plumbing for the benchmarks: the repository on sys.path, a private Redis database, a
throwaway PostgreSQL database with a tenant key, and child processes in their own session.

Nothing here measures anything; the benchmark scripts do that and print their figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import redis

# The repository root, for `tests`, `api`, `pipeline` … when run as `python bench/<name>.py`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.services import ROOT, free_port, postgres_database, stop_group

__all__ = [
    "DEFAULT_REDIS_URL",
    "ROOT",
    "RssSampler",
    "base_env",
    "cleanup_on_sigterm",
    "free_port",
    "migrated_database",
    "new_api_key",
    "private_redis",
    "show_log_on_error",
    "spawn",
    "wait_http_ok",
    "wait_until",
]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
MIB = 1024 * 1024


def cleanup_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop workers and drop the database."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def base_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: ours, fake AWS keys, offline models, plus `extra`."""
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextmanager
def private_redis(url: str) -> Iterator[redis.Redis]:
    """A Redis client on the benchmark's own database number, flushed before and after."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@contextmanager
def migrated_database() -> Iterator[str]:
    """A fresh PostgreSQL database at the schema's head, dropped (with every row) afterwards."""
    from pipeline.db.migrate import upgrade

    with postgres_database() as url:
        upgrade(url)
        yield url


def new_api_key(database_url: str, *, name: str = "bench") -> str:
    """Create a tenant and an API key directly in the database; return the key's secret."""
    from pipeline.db.session import make_engine, make_session_factory, transaction
    from pipeline.db.tenants import create_key, create_tenant

    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            tenant = create_tenant(session, name=name)
            return create_key(session, tenant_id=tenant.id).secret
    finally:
        engine.dispose()


@contextmanager
def spawn(args: list[str], *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own session (the whole group is stopped on exit), output to `log`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_group(proc)


@contextmanager
def show_log_on_error(log: Path, *, lines: int = 40) -> Iterator[None]:
    """On failure, print the end of a child's log before its temp directory disappears."""
    try:
        yield
    except BaseException:
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- last {len(tail)} lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)
        raise


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{what}: process exited early\n{tail}")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout} s")


def wait_http_ok(url: str, **kwargs: object) -> None:
    def ok() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status < 500)
        except OSError:
            return False

    wait_until(ok, what=url, **kwargs)  # type: ignore[arg-type]


class RssSampler:
    """Samples one process's RSS every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, *, interval: float) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = self.rss()
        self.samples = 0

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(psutil.Error):
                self.peak = max(self.peak, self.rss())
                self.samples += 1
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with suppress(psutil.Error):
            self.peak = max(self.peak, self.rss())
