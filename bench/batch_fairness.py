"""One-off jobs keep flowing while another tenant's batch runs: latency of tenant B's jobs, and
tenant A's batch throughput, with and without the other.

Real API (gunicorn) and one real worker (prefork -c 2 on every queue, with embedded beat,
SCHEDULER_TICK_S=0.5) on a throwaway PostgreSQL database, local blob store, private Redis DB.
In one run:
1. A's batch alone: N short (2-line) transcript items, one NDJSON POST, closed; A's throughput
   = items / (batch started_at → finished_at). Its duration D sets the spacing of B's jobs.
2. B alone (idle system): 20 one-off transcript jobs (POST /v1/jobs JSON), one every 0.8·D/20 s;
   each job's latency = completed_at - created_at from the database (submit → completed).
3. A's batch again (same N) while B submits the same 20 jobs at the same spacing.
Printed, each with its goal:
- B's p50 / p95 latency idle vs loaded, ratio loaded p95 / idle p95 (goal ≤ 1.5);
- A's items/s solo vs while B submits, ratio (goal ≥ 0.8).

    .venv/bin/python bench/batch_fairness.py             # 400 items
    .venv/bin/python bench/batch_fairness.py --items 100 # quick

The environment reaches the API and the worker: `OMP_NUM_THREADS=1 ... batch_fairness.py` runs
torch (the local analyzer's encoder) with one thread per worker process instead of one per core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
from _stack import (
    ALL_QUEUES,
    Tenant,
    announce_load,
    bench_redis,
    connect,
    make_tenant,
    service_env,
    start_api,
    start_worker,
    verdict,
    worker_cmd,
)
from _support import cleanup_on_sigterm, migrated_database, private_redis

LATENCY_GOAL = 1.5  # loaded p95 / idle p95 ≤
THROUGHPUT_GOAL = 0.8  # loaded items/s / solo items/s ≥
TURNS = [
    {"speaker": "agent", "text": "Thank you for calling Acme, this is Dana, how can I help?"},
    {"speaker": "customer", "text": "Hi, I would like to set up a payment plan for my balance."},
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=400, help="items in A's batch (400)")
    parser.add_argument("--b-jobs", type=int, default=20, help="B's one-off jobs per phase (20)")
    parser.add_argument("--tick", default="0.5", help="SCHEDULER_TICK_S for beat (0.5)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--redis-url", help="a Redis DB to flush and use (default: a free one)")
    return parser.parse_args()


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def post(self, tenant: Tenant, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:  # fmt: skip
        headers = {**tenant.headers, **(headers or {})}
        response = self.http.post(self.base + path, headers=headers, timeout=60, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def get(self, tenant: Tenant, path: str) -> Any:
        response = self.http.get(self.base + path, headers=tenant.headers, timeout=60)
        response.raise_for_status()
        return response.json()


def run_batch(api: Api, tenant: Tenant, items: int, name: str) -> str:
    """Create A's batch, add `items` transcript items in one NDJSON body, close it."""
    batch = api.post(tenant, "/v1/batches", json={"name": name})
    body = "".join(
        json.dumps({"transcript": TURNS, "external_id": f"{name}-{i}"}) + "\n" for i in range(items)
    )
    added = api.post(
        tenant,
        f"/v1/batches/{batch['id']}/items",
        data=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    if added.get("accepted") != items:
        raise RuntimeError(f"batch items: {added}")
    api.post(tenant, f"/v1/batches/{batch['id']}/close")
    return str(batch["id"])


def wait_batch(api: Api, tenant: Tenant, batch_id: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = api.get(tenant, f"/v1/batches/{batch_id}")
        if view["status"] in ("completed", "cancelled") and view["finished_at"]:
            if view["counts"].get("failed"):
                print(f"  WARNING: batch {batch_id} has failed items: {view['failures']}")
            return view
        time.sleep(0.5)
    raise TimeoutError(f"batch {batch_id} not finished after {timeout} s: {view.get('counts')}")


def batch_rate(view: dict[str, Any]) -> tuple[float, float]:
    """(seconds from the first release to the last item finished, items/s)."""
    from datetime import datetime

    began = datetime.fromisoformat(view["started_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(view["finished_at"].replace("Z", "+00:00"))
    seconds = (ended - began).total_seconds()
    return seconds, view["counts"]["total"] / seconds


def submit_spread(api: Api, tenant: Tenant, count: int, spacing: float, tag: str) -> list[str]:
    """B's one-off jobs, one every `spacing` seconds (the first after half a spacing)."""
    ids: list[str] = []
    start = time.monotonic() + spacing / 2
    for i in range(count):
        time.sleep(max(0.0, start + i * spacing - time.monotonic()))
        job = api.post(tenant, "/v1/jobs", json={"transcript": TURNS, "external_id": f"{tag}-{i}"})
        ids.append(str(job["id"]))
    return ids


def latencies(conn: Any, ids: list[str], *, timeout: float) -> list[float]:
    """completed_at - created_at of the jobs, once all of them are completed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = conn.execute(
            "SELECT status, extract(epoch FROM completed_at - created_at) FROM jobs"
            " WHERE id = ANY(%s)",
            (ids,),
        ).fetchall()
        failed = [r for r in rows if r[0] == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} of B's jobs failed")
        if len(rows) == len(ids) and all(r[0] == "completed" for r in rows):
            return [float(r[1]) for r in rows]
        time.sleep(0.2)
    raise TimeoutError(f"B's jobs not all completed after {timeout} s")


def breakdown(conn: Any, label: str, where: str, params: tuple[Any, ...]) -> None:
    """Where the jobs' time went: per stage, the wait before it (since the previous stage finished,
    or since release for the first) and its run time, as job_steps and jobs record them."""
    rows = conn.execute(
        f"""
        WITH s AS (
          SELECT st.stage, st.started_at, st.duration_ms,
                 coalesce(lag(st.finished_at) OVER (PARTITION BY st.job_id ORDER BY st.started_at),
                          j.released_at, j.created_at) AS ready_at
          FROM job_steps st JOIN jobs j ON j.id = st.job_id WHERE {where})
        SELECT stage, count(*), avg(extract(epoch FROM started_at - ready_at)) * 1000,
               avg(duration_ms)
        FROM s GROUP BY stage ORDER BY min(started_at)
        """,
        params,
    ).fetchall()
    parts = ", ".join(
        f"{st} wait {float(w or 0):.0f}/run {float(r or 0):.0f}" for st, _, w, r in rows
    )
    print(f"  {label}, avg ms per stage: {parts}")


def p50_p95(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    cleanup_on_sigterm()
    began = announce_load()
    with ExitStack() as stack:
        redis_url = bench_redis(stack, args.redis_url)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fairness-")))
        stack.enter_context(private_redis(redis_url))
        db_url = stack.enter_context(migrated_database())
        a, b = make_tenant(db_url, "tenant-a"), make_tenant(db_url, "tenant-b")
        env = service_env(database_url=db_url, redis_url=redis_url,
                          storage_url=f"file://{tmp / 'blobs'}", SCHEDULER_TICK_S=args.tick)  # fmt: skip
        api = Api(start_api(stack, env, tmp)[0])
        start_worker(stack, worker_cmd(ALL_QUEUES, beat=True, tmp=tmp), env, tmp / "worker.log")
        conn = stack.enter_context(connect(db_url))

        # Warm-up (imports, pools, first-task costs): two one-offs and a small batch.
        latencies(conn, submit_spread(api, b, 2, 0.1, "warm"), timeout=args.timeout)
        wait_batch(api, a, run_batch(api, a, 10, "warm"), timeout=args.timeout)

        solo_view = wait_batch(api, a, run_batch(api, a, args.items, "solo"), timeout=args.timeout)
        solo_s, solo_rate = batch_rate(solo_view)
        spacing = 0.8 * solo_s / args.b_jobs
        print(f"A solo: {args.items} items in {solo_s:.2f} s = {solo_rate:.1f} items/s; "
              f"B's jobs will be spaced {spacing:.2f} s apart")  # fmt: skip

        idle_ids = submit_spread(api, b, args.b_jobs, spacing, "idle")
        idle = latencies(conn, idle_ids, timeout=args.timeout)

        loaded_batch = run_batch(api, a, args.items, "loaded")
        loaded_ids: list[str] = []
        submitter = threading.Thread(
            target=lambda: loaded_ids.extend(submit_spread(api, b, args.b_jobs, spacing, "loaded")),
            daemon=True,
        )
        submitter.start()
        loaded_view = wait_batch(api, a, loaded_batch, timeout=args.timeout)
        submitter.join(timeout=args.timeout)
        everything = latencies(conn, loaded_ids, timeout=args.timeout)
        loaded_s, loaded_rate = batch_rate(loaded_view)
        # Only B's jobs created while A's batch ran count as loaded (if this machine got slower or
        # faster between the phases, the spacing from the solo run may not fit the loaded run).
        during_ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM jobs WHERE id = ANY(%s) AND created_at <= %s",
                (loaded_ids, loaded_view["finished_at"]),
            ).fetchall()
        ]
        loaded = latencies(conn, during_ids, timeout=args.timeout) if during_ids else everything

        i50, i95 = p50_p95(idle)
        l50, l95 = p50_p95(loaded) if len(loaded) > 1 else (loaded[0], loaded[0])
        a50, a95 = p50_p95(everything)
        ratio = l95 / i95
        t_ratio = loaded_rate / solo_rate
        print(f"B's {args.b_jobs} one-off jobs, latency (created → completed, database):")
        print(
            f"  idle:   p50 {i50 * 1000:7.0f} ms  p95 {i95 * 1000:7.0f} ms  max {max(idle) * 1000:.0f} ms"
        )
        print(f"  loaded: p50 {l50 * 1000:7.0f} ms  p95 {l95 * 1000:7.0f} ms  max {max(loaded) * 1000:.0f} ms"
              f"  (the {len(during_ids)} of {args.b_jobs} created before A's batch finished; all "
              f"{args.b_jobs}: p50 {a50 * 1000:.0f} ms, p95 {a95 * 1000:.0f} ms)")  # fmt: skip
        enough = len(during_ids) >= args.b_jobs // 2
        print(f"  ratio loaded p95 / idle p95 {ratio:.2f} (goal ≤ {LATENCY_GOAL}: "
              f"{verdict(ratio <= LATENCY_GOAL) if enough else 'VOID: too few of B jobs ran during the batch'}"
              f"); p50 ratio {l50 / i50:.2f}")  # fmt: skip
        breakdown(conn, "B idle", "j.id = ANY(%s)", (idle_ids,))
        breakdown(conn, "B loaded", "j.id = ANY(%s)", (during_ids or loaded_ids,))
        print(f"A's batch of {args.items} items (started_at → finished_at):")
        print(f"  solo:          {solo_s:6.2f} s = {solo_rate:6.1f} items/s")
        print(f"  while B submits: {loaded_s:6.2f} s = {loaded_rate:6.1f} items/s")
        print(f"  ratio loaded / solo {t_ratio:.2f} (goal ≥ {THROUGHPUT_GOAL}: "
              f"{verdict(t_ratio >= THROUGHPUT_GOAL)})")  # fmt: skip
        breakdown(conn, "A solo", "j.batch_id = %s", (solo_view["id"],))
        in_flight = conn.execute(
            "SELECT j.released_at, count(*) FROM jobs j WHERE j.batch_id = %s"
            " GROUP BY 1 ORDER BY 1 LIMIT 6",
            (solo_view["id"],),
        ).fetchall()
        print("  A solo, first releases (time, items): "
              + ", ".join(f"{t:%H:%M:%S.%f}"[:-3] + f" {n}" for t, n in in_flight))  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total bench time {time.perf_counter() - began:.1f} s; load average now {load}")


if __name__ == "__main__":
    main()
