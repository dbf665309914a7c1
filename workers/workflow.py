"""The pipeline's stages in order, their queues and priorities: composed here and nowhere else.

transcribe → diarize → analyze → score → persist. Each stage is its own task; when one finishes,
the runner commits the hand-off to the next as an outbox row in the same transaction as the
stage's result, and the task publishes it after the commit (`workers/outbox.py`). A hand-off that
cannot be published (the broker is down) stays in the outbox for the sweep: unlike a Celery chain,
whose next message is lost with the publish, no finished stage can strand its job.
"""

from __future__ import annotations

from celery.canvas import Signature

from pipeline.db.models import Job
from schemas.common import STAGES, InputKind, Stage
from schemas.envelope import JobEnvelope
from workers.app import app

# Queues by the kind of work (README "Queues"): waiting on a network provider costs a thread slot;
# local models are CPU work and go where one slot is one core.
NETWORK_TRANSCRIBE, LOCAL_TRANSCRIBE = "transcribe", "asr-local"
NETWORK_ANALYZE, LOCAL_ANALYZE = "analyze", "default"
# Broker priority (Redis: 0 is served first). One-off jobs go ahead of released batch items at
# every stage, so a night's batch never delays a daytime submission by more than one task; rescores
# (re-scoring finished calls, often in bulk) come last, behind batch items (docs/fairness.md).
ONE_OFF_PRIORITY, BATCH_PRIORITY, RESCORE_PRIORITY = 0, 6, 9


def stage_signature(envelope: JobEnvelope, stage: Stage, *, batch: bool = False) -> Signature:
    """The task running `stage` of this job, on its queue and at its kind's priority.

    Stages whose artifact exists are skipped, so sending the first stage again resumes a job where
    it stopped (that is how the reaper re-drives a job, and how a provider re-check continues one).
    """
    args = (envelope.model_dump(mode="json"),)
    signature = app.signature(f"pipeline.{stage.value}", args=args)
    signature.set(priority=BATCH_PRIORITY if batch else ONE_OFF_PRIORITY)
    queue = stage_queue(envelope, stage)
    return signature.set(queue=queue) if queue else signature


def stage_queue(envelope: JobEnvelope, stage: Stage) -> str | None:
    """Where `stage` of this job runs when its providers decide it; None: the task's own route."""
    if stage is Stage.TRANSCRIBE:
        local = envelope.input.kind is InputKind.AUDIO and not envelope.options.cloud_speech
        return LOCAL_TRANSCRIBE if local else NETWORK_TRANSCRIBE
    if stage is Stage.ANALYZE:
        return analyze_queue(envelope.options.analyzer_name)
    return None


def analyze_queue(analyzer: str) -> str:
    """Where analysis by `analyzer` runs (the chain's analyze stage, and a reanalyzing rescore)."""
    return NETWORK_ANALYZE if analyzer == "gemini" else LOCAL_ANALYZE


def send_stage(envelope: JobEnvelope, stage: Stage, *, batch: bool = False) -> None:
    stage_signature(envelope, stage, batch=batch).apply_async()


def start_pipeline(envelope: JobEnvelope, *, batch: bool = False) -> None:
    send_stage(envelope, STAGES[0], batch=batch)


def start_job(job: Job) -> None:
    """Publish a job's first stage (again) from its stored envelope, at its kind's priority."""
    start_pipeline(JobEnvelope.model_validate(job.envelope), batch=job.batch_id is not None)
