"""Real-time factor of the offline (embedded) pipeline, per stage, on this machine.

Runs the five real stages in-process (`pipeline.runner.run_stage`, no Celery) on the committed
samples: local Whisper, speaker separation for mono, role attribution, metrics + sentiment + the
local analyzer, the rule engine, and persist (a throwaway PostgreSQL database, local blob store). Each sample runs once to
load the models (reported apart) and then `--runs` times measured; the figure is the median.
Prints seconds and RTF (stage time / audio duration) per stage, and the whole pipeline's RTF
against the goal (≤ 0.15).

    .venv/bin/python bench/local_pipeline.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import wave
from pathlib import Path

from _support import migrated_database  # also puts the repository on sys.path

from pipeline import runner, submission
from pipeline.context import build_context
from pipeline.db.session import transaction
from pipeline.db.tenants import create_tenant
from pipeline.ids import new_id
from pipeline.settings import Settings
from pipeline.submission import Item, Submitter
from schemas.common import STAGES, InputKind, Stage
from schemas.envelope import JobEnvelope, JobInput
from schemas.tenant import TenantConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "samples" / "stereo.wav", ROOT / "samples" / "mono.wav"]
GOAL_RTF = 0.15


def audio_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def one_run(ctx: object, tenant_id: str, sample: Path) -> dict[Stage, float]:
    from pipeline.context import Context

    assert isinstance(ctx, Context)
    data = sample.read_bytes()
    job_id = new_id("job")
    key = f"tenants/{tenant_id}/jobs/{job_id}/input.wav"
    ctx.blobs.put_bytes(key, data, content_type="audio/wav")
    stored = JobInput(
        kind=InputKind.AUDIO,
        blob_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="audio/wav",
        bytes=len(data),
        format="wav",
    )
    submitter = Submitter(tenant_id, TenantConfig(), 0)  # as POST /v1/jobs submits, no HTTP
    with transaction(ctx.sessions) as session:
        job = submission.submit(session, ctx.settings, submitter, Item(job_id, stored))
        envelope = JobEnvelope.model_validate(job.envelope)
    times: dict[Stage, float] = {}
    current: JobEnvelope | None = envelope
    for stage in STAGES:
        assert current is not None, f"the job stopped before {stage}"
        began = time.perf_counter()
        current = runner.run_stage(stage, current, ctx)
        times[stage] = time.perf_counter() - began
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per sample (3)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="callintel-bench-") as tmp, migrated_database() as url:
        ctx = build_context(Settings(database_url=url, storage_url=f"file://{tmp}/blobs"))
        with transaction(ctx.sessions) as session:
            tenant_id = create_tenant(session, name="bench").id
        for sample in SAMPLES:
            report(sample, ctx, tenant_id, runs=args.runs)


def report(sample: Path, ctx: object, tenant_id: str, *, runs: int) -> None:
    seconds = audio_seconds(sample)
    began = time.perf_counter()
    one_run(ctx, tenant_id, sample)  # loads the models
    first = time.perf_counter() - began
    measured = [one_run(ctx, tenant_id, sample) for _ in range(runs)]
    print(f"\n{sample.name}: {seconds:.1f} s of audio; first run (model loading) {first:.2f} s")
    total = 0.0
    for stage in STAGES:
        median = statistics.median(m[stage] for m in measured)
        total += median
        print(f"  {stage.value:<10} {median:7.3f} s   RTF {median / seconds:.4f}")
    verdict = "met" if total / seconds <= GOAL_RTF else "MISSED"
    print(
        f"  {'pipeline':<10} {total:7.3f} s   RTF {total / seconds:.4f}  (goal ≤ {GOAL_RTF}: {verdict})"
    )


if __name__ == "__main__":
    main()
