"""What the pipeline costs per job beyond Celery itself: full chain vs a bare chain of no-ops.

Measures, in one run on the same Redis broker and the same worker settings (prefork, concurrency 2,
the celeryconfig.py task settings):
- full: N short text-transcript jobs run by a real worker (`celery -A workers.app:app worker`)
  through transcribe → diarize → analyze → score → persist, timed until the database counts N
  completed jobs (one COUNT query every --poll-ms). The jobs are created first through the real
  intake code (blob stored, job + outbox rows committed) and then all published at once by the
  outbox relay, so the clock starts where the bare side's starts: at publishing. This is the
  compared figure. A second line times the same N jobs POSTed through the API (Flask test client)
  from the first POST: end to end, intake included, on the same two cores;
- bare: N chains of five no-op tasks (bench/noop_app.py) whose last task INCRs a Redis counter,
  timed from the first apply_async until the counter reaches N.
Prints jobs/s for both and the ratio full/bare (goal >= 0.5), plus where the full chain's time goes
(intake, per-stage durations recorded by the pipeline).

    .venv/bin/python bench/pipeline_overhead.py            # full size: 200 jobs
    .venv/bin/python bench/pipeline_overhead.py --jobs 20  # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from _support import (
    DEFAULT_REDIS_URL,
    base_env,
    cleanup_on_sigterm,
    migrated_database,
    new_api_key,
    private_redis,
    show_log_on_error,
    spawn,
    wait_until,
)

QUEUES = "transcribe,asr-local,analyze,default,webhooks,maintenance"
RATIO_GOAL = 0.5
TRANSCRIPT = (
    "Agent: Thank you for calling Acme Bank, my name is Sarah, how can I help you today?\n"
    "Customer: Hi. I was charged twice for my monthly fee, and this is really frustrating.\n"
    "Agent: I'm sorry about that. I can see the duplicate charge and I have refunded it now.\n"
    "Customer: Okay, good. When will I get the money back?\n"
    "Agent: Within two business days. Is there anything else I can help you with?\n"
    "Customer: No, that's all, thanks.\n"
)


@dataclass(frozen=True)
class Timing:
    submit_s: float
    total_s: float
    jobs: int

    @property
    def rate(self) -> float:
        return self.jobs / self.total_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="measured jobs per side (200)")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured jobs first, per side")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool size (2)")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="completion poll period")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--only", choices=("full", "bare"), help="run one side only")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed before and after")
    return parser.parse_args()


def worker_cmd(app: str, concurrency: int, name: str) -> list[str]:
    """The same worker flags as tests/support/services.py's celery_worker."""
    return [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", QUEUES, "-P", "prefork",
            "-c", str(concurrency), "-l", "INFO", "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip


def start_worker(stack: ExitStack, cmd: list[str], env: dict[str, str], log: Path) -> None:
    proc = stack.enter_context(spawn(cmd, env=env, log=log))
    wait_until(
        lambda: "ready." in log.read_text(errors="replace"),
        what=f"worker ({log.name})",
        timeout=90,
        proc=proc,
        log=log,
        interval=0.2,
    )


# --- full chain ---------------------------------------------------------------------------------


def settings_env(settings: Any) -> dict[str, str]:
    """Like tests/conftest.py: a subprocess sees the same configuration through its environment."""
    values = {k.upper(): str(v) for k, v in settings.model_dump().items() if v is not None}
    return base_env(**values)


class JobCounter:
    """One query per poll: how many jobs are completed and how many failed."""

    def __init__(self, database_url: str) -> None:
        dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.conn = psycopg.connect(dsn, autocommit=True)

    def counts(self) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'),"
            " count(*) FILTER (WHERE status = 'failed') FROM jobs"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def wait_for(self, total: int, *, poll_s: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            completed, failed = self.counts()
            if failed:
                errors = self.conn.execute(
                    "SELECT error_stage, error_code, error_message FROM jobs"
                    " WHERE status = 'failed' LIMIT 3"
                ).fetchall()
                raise RuntimeError(f"{failed} job(s) failed, e.g. {errors}")
            if completed >= total:
                return
            time.sleep(poll_s)
        raise TimeoutError(f"only {self.counts()[0]}/{total} jobs completed after {timeout} s")


def submit_transcripts(client: Any, key: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(count):
        body = {"transcript": TRANSCRIPT, "external_id": f"bench-{i}"}
        response = client.post("/v1/jobs", json=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs: {response.status_code} {response.get_json()}")


def create_unpublished(app: Any, key: str, count: int) -> list[str]:
    """Jobs as the API creates them (blob + job + outbox rows), not yet published."""
    from api.auth import Caller
    from api.intake import accept_transcript
    from pipeline.db.tenants import tenant_for_key

    state = app.extensions["callintel"]
    with state.sessions() as session:
        tenant = tenant_for_key(session, key)
        assert tenant is not None
        caller = Caller(tenant_id=tenant.id, tenant_name=tenant.name, config={})
    body = {"transcript": TRANSCRIPT}
    return [
        accept_transcript(state, caller, {**body, "external_id": f"pre-{i}"}).id
        for i in range(count)
    ]


def run_full(args: argparse.Namespace, db_url: str, tmp: Path) -> tuple[Timing, Timing]:
    from api import create_app
    from pipeline.settings import Settings
    from workers import outbox

    settings = Settings(
        database_url=db_url,
        redis_url=args.redis_url,
        storage_url=f"file://{tmp / 'blobs'}",
        log_level="WARNING",
    )
    key = new_api_key(db_url)
    app = create_app({"SETTINGS": settings})
    client = app.test_client()
    counter = JobCounter(db_url)
    poll_s = args.poll_ms / 1000
    log = tmp / "worker-full.log"
    try:
        with show_log_on_error(log), ExitStack() as stack:
            start_worker(stack, worker_cmd("workers.app:app", args.concurrency, "full"),
                         settings_env(settings), log)  # fmt: skip
            submit_transcripts(client, key, args.warmup)
            counter.wait_for(args.warmup, poll_s=poll_s, timeout=args.timeout)
            job_ids = create_unpublished(app, key, args.jobs)
            began = time.perf_counter()
            outbox.relay(app.extensions["callintel"].sessions, job_ids=job_ids, limit=args.jobs)
            published = time.perf_counter()
            counter.wait_for(args.warmup + args.jobs, poll_s=poll_s, timeout=args.timeout)
            chain = Timing(published - began, time.perf_counter() - began, args.jobs)
            began = time.perf_counter()
            submit_transcripts(client, key, args.jobs)
            submitted = time.perf_counter()
            counter.wait_for(args.warmup + 2 * args.jobs, poll_s=poll_s, timeout=args.timeout)
            end_to_end = Timing(submitted - began, time.perf_counter() - began, args.jobs)
        print_stage_breakdown(counter, skip=args.warmup)
    finally:
        counter.conn.close()
        app.extensions["callintel"].engine.dispose()
    return chain, end_to_end


def print_stage_breakdown(counter: JobCounter, *, skip: int) -> None:
    """Per-stage durations the pipeline recorded for the measured jobs (warm-up excluded)."""
    rows = counter.conn.execute(
        """
        WITH measured AS (SELECT id FROM jobs ORDER BY created_at OFFSET %s)
        SELECT s.stage, count(*), avg(s.duration_ms),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_ms),
               max(s.duration_ms), avg(s.attempts)
        FROM job_steps s JOIN measured m ON m.id = s.job_id
        GROUP BY s.stage ORDER BY min(s.started_at)
        """,
        (skip,),
    ).fetchall()
    print("  full chain, per stage as recorded in job_steps (started → finished, ms):")
    for stage, n, avg, p50, worst, attempts in rows:
        print(
            f"    {stage:<10} n={n} avg {float(avg or 0):.1f} p50 {float(p50 or 0):.0f} "
            f"max {worst} attempts {float(attempts):.2f}"
        )
    span = counter.conn.execute(
        """
        WITH measured AS (SELECT id FROM jobs ORDER BY created_at OFFSET %s)
        SELECT extract(epoch FROM max(j.completed_at) - min(j.created_at)),
               avg(extract(epoch FROM j.completed_at - j.created_at))
        FROM jobs j JOIN measured m ON m.id = j.id
        """,
        (skip,),
    ).fetchone()
    assert span is not None
    print(
        f"  full chain: first created → last completed {float(span[0]):.2f} s; "
        f"mean job latency {float(span[1]):.2f} s"
    )


# --- bare chain ---------------------------------------------------------------------------------


def run_bare(args: argparse.Namespace, tmp: Path, redis_client: Any) -> Timing:
    import noop_app

    envelope = {
        "schema_version": 1,
        "job_id": "",
        "tenant_id": "ten_bench",
        "input": {"kind": "transcript", "blob_key": "k", "sha256": "0" * 64,
                  "content_type": "application/json", "bytes": 512, "format": "json"},
        "artifacts": {},
        "options": {"language": None, "channel_map": {"0": "agent", "1": "customer"}},
    }  # fmt: skip
    redis_client.delete(noop_app.COUNTER)

    def submit(count: int, offset: int) -> None:
        for i in range(count):
            noop_app.build_chain({**envelope, "job_id": f"job_{offset + i}"}).apply_async()

    def reached(total: int) -> bool:
        return int(redis_client.get(noop_app.COUNTER) or 0) >= total

    log = tmp / "worker-bare.log"
    with show_log_on_error(log), ExitStack() as stack:
        start_worker(stack, worker_cmd("bench.noop_app:app", args.concurrency, "bare"),
                     base_env(REDIS_URL=args.redis_url), log)  # fmt: skip
        poll = {"timeout": args.timeout, "interval": args.poll_ms / 1000}
        submit(args.warmup, 0)
        wait_until(lambda: reached(args.warmup), what="bare warm-up", **poll)  # type: ignore[arg-type]
        began = time.perf_counter()
        submit(args.jobs, args.warmup)
        submitted = time.perf_counter()
        total = args.warmup + args.jobs
        wait_until(lambda: reached(total), what="bare chains", **poll)  # type: ignore[arg-type]
        done = time.perf_counter()
    return Timing(submitted - began, done - began, args.jobs)


def describe(label: str, t: Timing) -> None:
    print(
        f"{label}: {t.jobs} jobs in {t.total_s:.2f} s = {t.rate:.1f} jobs/s "
        f"(submitting/publishing took {t.submit_s:.2f} s, {t.jobs / t.submit_s:.0f}/s)"
    )


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    cleanup_on_sigterm()
    # Celery reads its broker from the environment once, when workers.app is first imported.
    os.environ["REDIS_URL"] = args.redis_url
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    began = time.perf_counter()
    full = bare = None
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        redis_client = stack.enter_context(private_redis(args.redis_url))
        if args.only != "full":
            bare = run_bare(args, tmp, redis_client)
            describe("bare chain (5 no-op tasks)", bare)
            redis_client.flushdb()
        if args.only != "bare":
            db_url = stack.enter_context(migrated_database())
            os.environ["DATABASE_URL"] = db_url
            full, end_to_end = run_full(args, db_url, tmp)
            describe("full chain (transcribe→persist), jobs published at once", full)
            describe("full chain with intake (N POSTs, then the chain), for reference", end_to_end)
    if full and bare:
        ratio = full.rate / bare.rate
        verdict = "met" if ratio >= RATIO_GOAL else "MISSED"
        print(f"ratio full/bare {ratio:.3f} (goal >= {RATIO_GOAL}: {verdict})")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total bench time {time.perf_counter() - began:.1f} s; load average now {load}")


if __name__ == "__main__":
    main()
