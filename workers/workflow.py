"""The pipeline chain, composed in this one function and nowhere else."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from schemas.common import InputKind
from schemas.envelope import JobEnvelope
from workers import tasks

# Queues by the kind of work (README "Queues"): waiting on a network provider costs a thread slot;
# local models are CPU work and go where one slot is one core.
NETWORK_TRANSCRIBE, LOCAL_TRANSCRIBE = "transcribe", "asr-local"
NETWORK_ANALYZE, LOCAL_ANALYZE = "analyze", "default"


def build_chain(envelope: JobEnvelope) -> Signature:
    """transcribe → diarize → analyze → score → persist; each task gets the previous envelope.

    Stages whose artifact exists are skipped, so re-sending the chain resumes a job where it stopped
    (that is also how a provider re-check continues a job).
    """
    return chain(
        tasks.transcribe.s(envelope.model_dump(mode="json")).set(queue=_transcribe_queue(envelope)),
        tasks.diarize.s(),
        tasks.analyze.s().set(queue=analyze_queue(envelope.options.analyzer_name)),
        tasks.score.s(),
        tasks.persist.s(),
    )


def _transcribe_queue(envelope: JobEnvelope) -> str:
    local = envelope.input.kind is InputKind.AUDIO and not envelope.options.cloud_speech
    return LOCAL_TRANSCRIBE if local else NETWORK_TRANSCRIBE


def analyze_queue(analyzer: str) -> str:
    """Where analysis by `analyzer` runs (the chain's analyze stage, and a reanalyzing rescore)."""
    return NETWORK_ANALYZE if analyzer == "gemini" else LOCAL_ANALYZE


def start_pipeline(envelope: JobEnvelope) -> None:
    build_chain(envelope).apply_async()
