"""Each stage is routed by the job's pinned providers: network waits vs CPU-bound models."""

from __future__ import annotations

import pytest

from schemas.common import STAGES, InputKind
from schemas.envelope import JobEnvelope, JobInput, JobOptions
from workers.workflow import BATCH_PRIORITY, ONE_OFF_PRIORITY, RESCORE_PRIORITY, stage_signature


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
    job = envelope(kind, transcriber=transcriber, analyzer=analyzer)
    signatures = [stage_signature(job, stage) for stage in STAGES]
    assert [sig.task for sig in signatures] == [
        f"pipeline.{s}" for s in ("transcribe", "diarize", "analyze", "score", "persist")
    ]
    assert [sig.options.get("queue") for sig in signatures] == queues
    assert {sig.options["priority"] for sig in signatures} == {ONE_OFF_PRIORITY}
    assert signatures[0].args[0]["job_id"] == "job_1"


def test_batch_items_go_at_batch_priority() -> None:
    job = envelope(InputKind.TRANSCRIPT, transcriber=None, analyzer="local")
    for stage in STAGES:
        assert stage_signature(job, stage, batch=True).options["priority"] == BATCH_PRIORITY


def test_rescores_come_after_batch_items_which_come_after_one_off_jobs() -> None:
    """Redis serves 0 first, in steps of 0, 3, 6, 9: each kind must land on its own step."""
    assert ONE_OFF_PRIORITY < BATCH_PRIORITY < RESCORE_PRIORITY <= 9
    assert {p // 3 for p in (ONE_OFF_PRIORITY, BATCH_PRIORITY, RESCORE_PRIORITY)} == {0, 2, 3}
