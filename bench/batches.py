"""Bulk intake of a night's batch through the API: JSON Lines items per second, API memory, and
the latency of a batch's status document.

On PostgreSQL (a throwaway database), with the local blob store: a batch is created and N transcript items are POSTed as one `application/x-ndjson` body
(sent as a stream), through the real Flask app in this process (no network in between, so the
figure is the API's own cost). Printed, each with its goal:
- items accepted per second (goal >= 1,000/s on PostgreSQL);
- RSS growth of the process during the intake (goal <= 64 MiB: lines are streamed, never buffered);
- p50/p95 of `GET /v1/batches/{id}` on the full batch (goal p95 <= 50 ms: read from counters);
- and, for reference, the same N items as N single `POST /v1/jobs` calls (the baseline).

    .venv/bin/python bench/batches.py                 # 10,000 items
    .venv/bin/python bench/batches.py --items 50000   # the size the issue's status goal names
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psutil
from _support import cleanup_on_sigterm, migrated_database, new_api_key

MIB = 1024 * 1024
TURNS = [
    {"speaker": "agent", "text": "Thank you for calling Acme, this is Dana, how can I help?"},
    {"speaker": "customer", "text": "Hi, I would like to set up a payment plan for my balance."},
]


def lines(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield (
            json.dumps(
                {"transcript": TURNS, "external_id": f"call-{i}", "idempotency_key": f"k{i}"}
            ).encode()
            + b"\n"
        )


def run(engine: str, database_url: str, *, items: int, singles: int, tmp: Path) -> None:
    from api import create_app
    from pipeline.settings import Settings

    settings = Settings(
        database_url=database_url,
        storage_url=f"file://{tmp / engine}",
        rate_limit_submit_per_s=0,  # one tenant's 10,000 items and singles: capacity, not limits
        rate_limit_batch_per_s=0,
    )
    app = create_app({"TESTING": True, "SETTINGS": settings})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {new_api_key(database_url)}"}
    batch = client.post("/v1/batches", json={"name": "bench"}, headers=headers).json
    assert batch is not None, "batch creation failed"
    body_file = tmp / f"{engine}-items.jsonl"  # written line by line, sent from disk
    with body_file.open("wb") as out:
        out.writelines(lines(items))
    proc = psutil.Process(os.getpid())
    before = proc.memory_info().rss
    began = time.perf_counter()
    with body_file.open("rb") as stream:
        response = client.post(
            f"/v1/batches/{batch['id']}/items",
            input_stream=stream,
            content_length=body_file.stat().st_size,
            content_type="application/x-ndjson",
            headers=headers,
        )
    took = time.perf_counter() - began
    growth = (proc.memory_info().rss - before) / MIB
    body = response.json or {}
    accepted = body.get("accepted", 0)
    print(f"{engine}: {accepted} items in {took:.2f} s = {accepted / took:,.0f} items/s "
          f"(goal >= 1,000/s on PostgreSQL); RSS growth {growth:.1f} MiB (goal <= 64 MiB)")  # fmt: skip
    timings = []
    for _ in range(200):
        t0 = time.perf_counter()
        client.get(f"/v1/batches/{batch['id']}", headers=headers)
        timings.append((time.perf_counter() - t0) * 1000)
    p95 = statistics.quantiles(timings, n=20)[18]
    print(f"{engine}: GET /v1/batches/{{id}} on {accepted} items: p50 {statistics.median(timings):.1f} ms, "
          f"p95 {p95:.1f} ms (goal p95 <= 50 ms)")  # fmt: skip
    began = time.perf_counter()
    for i in range(singles):
        client.post("/v1/jobs", json={"transcript": TURNS, "external_id": f"s{i}"}, headers=headers)
    single_rate = singles / (time.perf_counter() - began)
    print(f"{engine}: baseline, single POST /v1/jobs: {single_rate:,.0f} jobs/s; "
          f"JSON Lines is {accepted / took / single_rate:.1f}x that")  # fmt: skip
    app.extensions["callintel"].engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=300)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    cleanup_on_sigterm()
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")  # single POSTs publish here
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-batches-")))
        pg = stack.enter_context(migrated_database())
        run("postgresql", pg, items=args.items, singles=args.singles, tmp=tmp)


if __name__ == "__main__":
    main()
