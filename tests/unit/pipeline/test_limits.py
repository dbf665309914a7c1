"""Capacity limits in the pipeline: the checks, WAV durations, and the transcribe stage refusing a
stored transcript that a lowered limit no longer admits."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api.auth import Caller
from api.intake import accept_transcript
from pipeline import runner
from pipeline.context import Context, build_context
from pipeline.db.models import Job
from pipeline.errors import TooLong
from pipeline.limits import check_audio_seconds, check_transcript
from pipeline.media import head_wav_seconds, wav_seconds
from pipeline.settings import Settings
from schemas.api import TranscriptTurn
from schemas.common import Stage
from schemas.envelope import JobEnvelope
from tests.conftest import TenantKey

LIMITED = Settings(max_transcript_chars=10, max_utterances=2, max_audio_seconds=60)


def _turns(*texts: str) -> list[TranscriptTurn]:
    return [TranscriptTurn(speaker="agent", text=t) for t in texts]


def test_transcript_checks_name_the_limit_hit() -> None:
    check_transcript(_turns("12345", "67890"), LIMITED)  # exactly at both limits
    with pytest.raises(TooLong) as chars:
        check_transcript(_turns("12345", "678901"), LIMITED)
    assert (chars.value.setting, chars.value.limit, chars.value.measured) == (
        "MAX_TRANSCRIPT_CHARS",
        10,
        11,
    )
    with pytest.raises(TooLong) as turns:
        check_transcript(_turns("a", "b", "c"), LIMITED)
    assert (turns.value.setting, turns.value.measured, turns.value.unit) == (
        "MAX_UTTERANCES",
        3,
        "utterances",
    )


def test_audio_check_rounds_up_and_lets_unknown_durations_pass() -> None:
    check_audio_seconds(60.0, LIMITED)
    check_audio_seconds(None, LIMITED)  # not measurable here: the transcriber probes it
    with pytest.raises(TooLong, match="has 61 seconds; MAX_AUDIO_SECONDS is 60"):
        check_audio_seconds(60.2, LIMITED)


def test_wav_duration_from_the_header_and_the_size(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)  # 32,000 bytes a second
        out.writeframes(bytes(4 * 8000 * 3))
    data = buffer.getvalue()
    assert head_wav_seconds(data[:64], total_bytes=len(data)) == 3.0
    (tmp_path / "call.wav").write_bytes(data)
    assert wav_seconds(tmp_path / "call.wav") == 3.0
    assert head_wav_seconds(b"ID3" + bytes(61), total_bytes=10**6) is None  # MP3: unknown


@pytest.fixture
def limited_ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings.model_copy(update={"max_utterances": 1}))
    yield context
    context.sessions.kw["bind"].dispose()


def test_transcribe_refuses_a_stored_transcript_over_a_lowered_limit(
    app: Flask, limited_ctx: Context, tenant: TenantKey
) -> None:
    caller = Caller(tenant_id=tenant.tenant_id, tenant_name="acme", config={})
    body = {"transcript": "Agent: Hello.\nCustomer: Hi."}
    job = accept_transcript(app.extensions["callintel"], caller, body)  # admitted at intake
    with limited_ctx.sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None
        envelope = JobEnvelope.model_validate(row.envelope)
    with pytest.raises(TooLong, match="MAX_UTTERANCES is 1"):
        runner.run_stage(Stage.TRANSCRIBE, envelope, limited_ctx)
