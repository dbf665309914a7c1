"""`callintel run` (what `make run` starts): embedded Redis and PostgreSQL, local blobs, every process up.

Runs the real command in a scratch directory with none of the service variables set, submits the
README's examples over HTTP, and checks that Ctrl-C, or a SIGKILL of the supervisor, leaves no process
behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.services import ROOT, free_port, stop_group, wait_for_log

pytestmark = pytest.mark.integration


def _call(url: str, key: str, *, body: bytes | None = None, content_type: str = "") -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_done(api: str, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = _call(f"{api}/v1/jobs/{job_id}", key)
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


CLI = [sys.executable, "-c", "from api.cli import cli; cli()"]
ENV = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "STORAGE_URL"}}


def _start(cwd: Path, log: Path, port: int, flower: int) -> subprocess.Popen[bytes]:
    args = [*CLI, "run", "--port", str(port), "--flower-port", str(flower), "--concurrency", "1"]
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_embedded_stack_runs_the_readme_examples(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    env, cli = ENV, CLI
    port, flower = free_port(), free_port()
    log = tmp_path / "run.log"
    proc = _start(tmp_path, log, port, flower)
    try:
        wait_for_log(log, "Callintel is up", proc=proc, timeout=120)
        wait_for_log(log, "ready.", proc=proc, timeout=60)  # the worker
        key = (tmp_path / "var" / "demo-api-key").read_text().strip()
        api = f"http://127.0.0.1:{port}"
        assert key in log.read_text()

        body = (tmp_path / "samples" / "transcript.json").read_bytes()
        job = _call(f"{api}/v1/jobs", key, body=body, content_type="application/json")
        assert _wait_done(api, key, job["id"])["status"] == "completed"

        curl = [
            "curl",
            "-sf",
            "-H",
            f"Authorization: Bearer {key}",
            "-F",
            "file=@samples/stereo.wav",
            f"{api}/v1/jobs",
        ]
        job = json.loads(subprocess.run(curl, cwd=tmp_path, check=True, capture_output=True).stdout)
        assert _wait_done(api, key, job["id"])["status"] == "completed"
        result = _call(f"{api}/v1/jobs/{job['id']}/result", key)
        assert {u["role"] for u in result["transcript"]} == {"agent", "customer"}

        submit = [*cli, "submit", "--url", api, "--key", key]
        text = subprocess.run(
            [*submit, "--external-id", "cli-txt", "samples/transcript.txt"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert json.loads(text.stdout)["call"]["external_id"] == "cli-txt"  # waited for the result
        audio = subprocess.run(
            [*submit, "--no-wait", "--external-id", "cli-wav", "samples/mono.wav"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert json.loads(audio.stdout)["external_id"] == "cli-wav"  # the job document, at once

        assert (tmp_path / "var" / "pg" / "PG_VERSION").exists()
        assert list((tmp_path / "var" / "blobs" / "tenants").iterdir())
        with urllib.request.urlopen(f"http://127.0.0.1:{flower}/", timeout=10) as response:
            assert response.status == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6  # postgres, redis, gunicorn, worker, beat, flower
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        finally:
            stop_group(proc)
    time.sleep(1)
    assert not _alive(children)


def test_a_killed_supervisor_takes_its_stack_along_and_the_next_run_starts(tmp_path: Path) -> None:
    port, flower = free_port(), free_port()
    proc = _start(tmp_path, tmp_path / "run.log", port, flower)
    try:
        wait_for_log(tmp_path / "run.log", "Callintel is up", proc=proc, timeout=120)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 6
        proc.kill()  # SIGKILL: no handler runs, nothing is stopped in order
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(children), [p.cmdline()[:3] for p in _alive(children)]

        again = _start(
            tmp_path, tmp_path / "again.log", port, flower
        )  # the same ports, the same data
        try:
            wait_for_log(tmp_path / "again.log", "Callintel is up", proc=again, timeout=120)
            key = (tmp_path / "var" / "demo-api-key").read_text().strip()
            api, body = (
                f"http://127.0.0.1:{port}",
                (ROOT / "samples" / "transcript.json").read_bytes(),
            )
            job = _call(f"{api}/v1/jobs", key, body=body, content_type="application/json")
            assert _wait_done(api, key, job["id"])["status"] == "completed"
        finally:
            os.killpg(again.pid, signal.SIGINT)
            again.wait(timeout=40)
    finally:
        stop_group(proc)
