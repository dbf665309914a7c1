"""The pipeline chain, composed in this one function and nowhere else."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from pipeline.db.models import Job
from schemas.common import InputKind
from schemas.envelope import JobEnvelope
from workers import tasks

# Queues by the kind of work (README "Queues"): waiting on a network provider costs a thread slot;
# local models are CPU work and go where one slot is one core.
NETWORK_TRANSCRIBE, LOCAL_TRANSCRIBE = "transcribe", "asr-local"
NETWORK_ANALYZE, LOCAL_ANALYZE = "analyze", "default"
# Broker priority (Redis: 0 is served first). One-off jobs go ahead of released batch items at
# every stage, so a night's batch never delays a daytime submission by more than one task.
ONE_OFF_PRIORITY, BATCH_PRIORITY = 0, 6


def build_chain(envelope: JobEnvelope, *, priority: int = ONE_OFF_PRIORITY) -> Signature:
    """transcribe → diarize → analyze → score → persist; each task gets the previous envelope.

    Stages whose artifact exists are skipped, so re-sending the chain resumes a job where it stopped
    (that is also how a provider re-check continues a job).
    """
    return chain(
        tasks.transcribe.s(envelope.model_dump(mode="json")).set(
            queue=_transcribe_queue(envelope), priority=priority
        ),
        tasks.diarize.s().set(priority=priority),
        tasks.analyze.s().set(
            queue=analyze_queue(envelope.options.analyzer_name), priority=priority
        ),
        tasks.score.s().set(priority=priority),
        tasks.persist.s().set(priority=priority),
    )


def _transcribe_queue(envelope: JobEnvelope) -> str:
    local = envelope.input.kind is InputKind.AUDIO and not envelope.options.cloud_speech
    return LOCAL_TRANSCRIBE if local else NETWORK_TRANSCRIBE


def analyze_queue(analyzer: str) -> str:
    """Where analysis by `analyzer` runs (the chain's analyze stage, and a reanalyzing rescore)."""
    return NETWORK_ANALYZE if analyzer == "gemini" else LOCAL_ANALYZE


def start_pipeline(envelope: JobEnvelope, *, priority: int = ONE_OFF_PRIORITY) -> None:
    build_chain(envelope, priority=priority).apply_async()


def start_job(job: Job) -> None:
    """Publish a job's chain (again) from its stored envelope, at its kind's priority."""
    priority = BATCH_PRIORITY if job.batch_id else ONE_OFF_PRIORITY
    start_pipeline(JobEnvelope.model_validate(job.envelope), priority=priority)
