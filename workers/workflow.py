"""The pipeline chain, composed in this one function and nowhere else."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from schemas.envelope import JobEnvelope
from workers import tasks


def build_chain(envelope: JobEnvelope) -> Signature:
    """transcribe → diarize → analyze → score → persist; each task gets the previous envelope.

    Stages whose artifact exists are skipped, so re-sending the chain resumes a job where it stopped.
    """
    return chain(
        tasks.transcribe.s(envelope.model_dump(mode="json")),
        tasks.diarize.s(),
        tasks.analyze.s(),
        tasks.score.s(),
        tasks.persist.s(),
    )


def start_pipeline(envelope: JobEnvelope) -> None:
    build_chain(envelope).apply_async()
