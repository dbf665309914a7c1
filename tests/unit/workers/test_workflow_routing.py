"""The chain routes each job's work by its pinned providers: network waits vs CPU-bound models."""

from __future__ import annotations

import pytest

from schemas.common import InputKind
from schemas.envelope import JobEnvelope, JobInput, JobOptions
from workers.workflow import build_chain


def envelope(kind: InputKind, *, transcriber: str | None, analyzer: str | None) -> JobEnvelope:
    return JobEnvelope(
        job_id="job_1",
        tenant_id="ten_1",
        input=JobInput(kind=kind, blob_key="k", sha256="0" * 64, content_type="x", bytes=1),
        options=JobOptions(transcriber=transcriber, analyzer=analyzer),
    )


@pytest.mark.parametrize(
    ("kind", "transcriber", "analyzer", "queues"),
    [
        (InputKind.AUDIO, "local", "local", ["asr-local", None, "default", None, None]),
        (InputKind.AUDIO, "assemblyai", "gemini", ["transcribe", None, "analyze", None, None]),
        (InputKind.TRANSCRIPT, None, "gemini", ["transcribe", None, "analyze", None, None]),
    ],
)
def test_queues_follow_the_providers(
    kind: InputKind, transcriber: str | None, analyzer: str | None, queues: list[str | None]
) -> None:
    chain = build_chain(envelope(kind, transcriber=transcriber, analyzer=analyzer))
    names = [task.task for task in chain.tasks]
    assert names == [
        f"pipeline.{s}" for s in ("transcribe", "diarize", "analyze", "score", "persist")
    ]
    assert [task.options.get("queue") for task in chain.tasks] == queues
