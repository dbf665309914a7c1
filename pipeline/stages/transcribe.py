"""Transcribe: audio through the configured Transcriber, or a text transcript parsed into segments."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from pipeline.context import Context
from pipeline.errors import InvalidAudio, InvalidInput
from pipeline.media import AudioFormat, sniff, validate_audio
from pipeline.stages import StageOutput
from pipeline.transcript_text import parse_text, turns_to_segments
from schemas.api import TranscriptTurn
from schemas.common import InputKind
from schemas.envelope import JobEnvelope
from schemas.transcript import RawTranscript

_TURNS = TypeAdapter(list[TranscriptTurn] | str)


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    if envelope.input.kind is InputKind.TRANSCRIPT:
        return StageOutput(_from_text(envelope, ctx), provider="text", model=None)
    raw = _from_audio(envelope, ctx)
    return StageOutput(raw, provider=raw.provider, model=raw.model)


def _from_text(envelope: JobEnvelope, ctx: Context) -> RawTranscript:
    try:
        body = json.loads(ctx.blobs.get_bytes(envelope.input.blob_key))
        given = _TURNS.validate_python(body["transcript"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise InvalidInput("the stored transcript is not readable") from exc
    turns = parse_text(given) if isinstance(given, str) else given
    segments = turns_to_segments(turns)
    return RawTranscript(
        language=envelope.options.language,
        duration_ms=max(s.end_ms for s in segments),
        channels=0,
        segments=segments,
        provider="text",
    )


def _from_audio(envelope: JobEnvelope, ctx: Context) -> RawTranscript:
    with tempfile.TemporaryDirectory(prefix="callintel-") as tmp:
        path = Path(tmp) / f"input.{envelope.input.format or 'bin'}"
        ctx.blobs.download(envelope.input.blob_key, path)
        with path.open("rb") as fh:
            fmt: AudioFormat | None = sniff(fh.read(64))
        if fmt is None:
            raise InvalidAudio("the input is not a recognised audio format")
        validate_audio(path, fmt)
        raw = ctx.transcriber.transcribe(path, language=envelope.options.language)
        if raw.channels == 1 and not any(s.speaker for s in raw.segments):
            # Mono: one channel carries both voices; separate them while the audio is at hand.
            raw = ctx.separator.separate(path, raw, speakers=2)
        return raw
