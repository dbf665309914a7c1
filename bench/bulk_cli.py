"""`callintel bulk submit` of a folder of small recordings vs the same files as single
multipart POST /v1/jobs calls at the same concurrency: wall time, files/s and their ratio.

The API runs under gunicorn (gthread, --api-workers x --api-threads) with S3 storage on moto's
server (a child process): the CLI's uploads are presigned PUTs straight to moto, then JSON Lines
groups of 200 items to POST /v1/batches/{id}/items and a close. No workers run: batch items stay
in the backlog, and single POSTs publish to a private Redis database. N WAVs (~8 KB each, 0.25 s
of 16 kHz noise, all different) are written into a temp folder first. Printed:
- bulk submit (a subprocess: `python -c "from api.cli import cli; cli()" bulk submit DIR --batch
  NAME --concurrency 8`): wall time, files/s, the CLI's own CPU time; the batch's jobs counted in
  the database (goal: == N, each file once);
- single POSTs (a ThreadPoolExecutor of 8, one requests.Session per thread, another tenant so no
  deduplication can interfere): wall time, files/s; every answer 202 (goal);
- the ratio bulk files/s / single files/s (no goal was stated; for reference), and the API's CPU
  seconds per 1,000 files for each.

    .venv/bin/python bench/bulk_cli.py                 # 2,000 files
    .venv/bin/python bench/bulk_cli.py --files 200     # quick
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import psutil
import requests
from _stack import (
    announce_load,
    bench_redis,
    connect,
    make_tenant,
    scalar,
    service_env,
    start_api,
    start_moto,
    verdict,
)
from _support import ROOT, base_env, cleanup_on_sigterm, migrated_database, private_redis

BUCKET = "callintel"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="WAV files (2,000)")
    parser.add_argument("--concurrency", type=int, default=8, help="both sides (8)")
    parser.add_argument("--api-workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--api-threads", type=int, default=8, help="threads per worker (8)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--redis-url", help="a Redis DB to flush and use (default: a free one)")
    return parser.parse_args()


def write_wavs(folder: Path, count: int, *, rate: int = 16_000, seconds: float = 0.25) -> int:
    """`count` different WAVs (noise, so content-derived idempotency keys all differ)."""
    folder.mkdir()
    frames = int(rate * seconds)
    for i in range(count):
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(os.urandom(2 * frames))
        (folder / f"call-{i:05d}.wav").write_bytes(buffer.getvalue())
    return 44 + 2 * frames


def api_cpu(arbiter: psutil.Process) -> float:
    """CPU seconds of gunicorn's arbiter and workers so far."""
    total = 0.0
    for proc in [arbiter, *arbiter.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(base: str, key: str, folder: Path, tmp: Path, *, concurrency: int,
            timeout: float) -> tuple[float, float, str]:  # fmt: skip
    """(wall seconds, the CLI's CPU seconds, its last lines of output)."""
    cmd = [sys.executable, "-c", "from api.cli import cli; cli()", "bulk", "submit", str(folder),
           "--batch", "bench-night", "--concurrency", str(concurrency), "--url", base,
           "--state-file", str(tmp / "bulk-state.json")]  # fmt: skip
    env = base_env(CALLINTEL_API_KEY=key)
    cpu0, began = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False)
    took, cpu = time.perf_counter() - began, children_cpu() - cpu0
    out = (done.stdout + done.stderr).decode(errors="replace")
    tail = "\n".join(line for line in out.splitlines()[-6:] if line.strip())
    if done.returncode != 0:
        raise RuntimeError(f"bulk submit exited {done.returncode}:\n{out[-3000:]}")
    return took, cpu, tail


def run_singles(
    base: str, key: str, files: list[Path], *, concurrency: int
) -> tuple[float, dict[int, int]]:
    """Each file as one multipart POST /v1/jobs, `concurrency` at a time; (seconds, statuses)."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {key}"}
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def post(path: Path) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = requests.Session()
        with path.open("rb") as body:
            response = http.post(f"{base}/v1/jobs", files={"file": (path.name, body, "audio/wav")},
                                 headers=headers, timeout=60)  # fmt: skip
        with lock:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, files))
    return time.perf_counter() - began, statuses


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    cleanup_on_sigterm()
    began = announce_load()
    n = args.files
    with ExitStack() as stack:
        redis_url = bench_redis(stack, args.redis_url)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-bulk-")))
        size = write_wavs(tmp / "night", n)
        files = sorted((tmp / "night").iterdir())
        print(f"{n} WAV files of {size} bytes written in {time.perf_counter() - began:.1f} s")
        stack.enter_context(private_redis(redis_url))
        db_url = stack.enter_context(migrated_database())
        endpoint = start_moto(stack, tmp, BUCKET)
        bulk_tenant, single_tenant = make_tenant(db_url, "bulk"), make_tenant(db_url, "single")
        env = service_env(database_url=db_url, redis_url=redis_url,
                          storage_url=f"s3://{BUCKET}/blobs", s3_endpoint=endpoint)  # fmt: skip
        base, api_proc = start_api(
            stack, env, tmp, workers=args.api_workers, threads=args.api_threads
        )
        arbiter = psutil.Process(api_proc.pid)
        conn = stack.enter_context(connect(db_url))
        # Warm-up: every gunicorn worker imports, connects and makes its S3 client.
        warm = make_tenant(db_url, "warm-up")
        run_singles(base, warm.key, files[:16], concurrency=args.concurrency)

        cpu0 = api_cpu(arbiter)
        cli_s, cli_cpu, tail = run_cli(base, bulk_tenant.key, tmp / "night", tmp,
                                       concurrency=args.concurrency, timeout=args.timeout)  # fmt: skip
        cli_api_cpu = api_cpu(arbiter) - cpu0
        jobs, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT item_key) FROM jobs WHERE tenant_id = %s",
            (bulk_tenant.id,),
        ).fetchone() or (0, 0)
        status = scalar(conn, "SELECT string_agg(status, ',') FROM batches WHERE tenant_id = %s",
                        (bulk_tenant.id,))  # fmt: skip

        cpu0 = api_cpu(arbiter)
        single_s, statuses = run_singles(
            base, single_tenant.key, files, concurrency=args.concurrency
        )
        single_api_cpu = api_cpu(arbiter) - cpu0
        singles = scalar(
            conn, "SELECT count(*) FROM jobs WHERE tenant_id = %s", (single_tenant.id,)
        )

        print(f"bulk submit --concurrency {args.concurrency}: {n} files in {cli_s:.2f} s = "
              f"{n / cli_s:.1f} files/s; CLI CPU {cli_cpu:.1f} s; API CPU "
              f"{cli_api_cpu / n * 1000:.1f} s per 1,000 files")  # fmt: skip
        print("  CLI said: " + tail.replace("\n", "\n            "))
        print(f"  jobs of the batch in the database {jobs} (distinct item keys {distinct}), batch "
              f"{status}: one per file (goal == {n}): {verdict(jobs == distinct == n)}")  # fmt: skip
        print(f"single POST /v1/jobs x{args.concurrency} threads: {n} files in {single_s:.2f} s = "
              f"{n / single_s:.1f} files/s; API CPU {single_api_cpu / n * 1000:.1f} s per 1,000 "
              f"files; answers {statuses}, jobs {singles} (goal all 202: "
              f"{verdict(statuses == {202: n} and singles == n)})")  # fmt: skip
        ratio = (n / cli_s) / (n / single_s)
        print(f"ratio bulk / single files/s {ratio:.2f} (no goal stated; for reference); "
              f"API: gunicorn {args.api_workers} workers x {args.api_threads} threads (gthread)")  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total bench time {time.perf_counter() - began:.1f} s; load average now {load}")


if __name__ == "__main__":
    main()
