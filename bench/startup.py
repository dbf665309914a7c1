"""Start-up times with nothing installed but the package: `make run` and a test session.

- `make run` (`callintel run`) in a scratch folder: seconds until "Callintel is up", on a fresh
  ./var (PostgreSQL's initdb included) and again on the kept one.
- A test session of one database test: with the machine's PostgreSQL and Redis, and with the
  embedded ones the session starts itself (CALLINTEL_TEST_EMBEDDED=1); the difference is what a
  machine without servers pays per `make test`.

    .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import ROOT, free_port

TEST = "tests/unit/pipeline/db/test_jobs_repo.py"


def make_run_seconds(folder: Path) -> float:
    """Seconds from launch until the supervisor prints "Callintel is up", then a clean Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    args = [sys.executable, "-c", "from api.cli import cli; cli()", "run", "--concurrency", "1",
            "--port", str(free_port()), "--flower-port", str(free_port())]  # fmt: skip
    began = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if b"Callintel is up" in line:
                return time.monotonic() - began
        raise RuntimeError("callintel run exited before it was up")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)


def test_session_seconds(*, embedded: bool) -> float:
    env = dict(os.environ)
    if embedded:
        env["CALLINTEL_TEST_EMBEDDED"] = "1"
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            cold.append(make_run_seconds(Path(tmp)))
            warm.append(make_run_seconds(Path(tmp)))
    shared = [test_session_seconds(embedded=False) for _ in range(runs)]
    embedded = [test_session_seconds(embedded=True) for _ in range(runs)]

    med = statistics.median
    print(f"make run until up, fresh ./var   median {med(cold):5.2f} s  (runs: {_fmt(cold)})")
    print(f"make run until up, kept ./var    median {med(warm):5.2f} s  (runs: {_fmt(warm)})")
    print(f"test session, machine services   median {med(shared):5.2f} s  (runs: {_fmt(shared)})")
    print(
        f"test session, embedded services  median {med(embedded):5.2f} s  (runs: {_fmt(embedded)})"
    )
    print(f"embedded services cost per test session: {med(embedded) - med(shared):+.2f} s")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
