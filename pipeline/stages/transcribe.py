"""Transcribe: audio through the job's speech provider, or a text transcript parsed into segments.

Local speech runs here, on the CPU. A cloud provider (AssemblyAI) is submitted to once and then
re-checked: a check that finds it still working raises NotReady, the task ends, and the database
schedules the next check, so no worker slot is held while the provider works.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from pipeline import provider_webhooks
from pipeline.context import Context
from pipeline.db import provider_checks
from pipeline.db.models import utcnow
from pipeline.db.session import transaction
from pipeline.db.tenant_config import config_for_job
from pipeline.errors import InvalidAudio, InvalidInput, NotReady
from pipeline.limits import check_audio_seconds, check_transcript
from pipeline.media import AudioFormat, sniff, validate_audio, wav_channels, wav_seconds
from pipeline.ports import TranscriptionRequest
from pipeline.rules.pci import redact_segments
from pipeline.stages import StageOutput
from pipeline.transcript_text import parse_text, turns_to_segments
from schemas.api import TranscriptTurn
from schemas.common import InputKind, Stage
from schemas.envelope import JobEnvelope
from schemas.transcript import RawTranscript

_TURNS = TypeAdapter(list[TranscriptTurn] | str)
PRESIGNED_URL_TTL_S = 24 * 3600


def run(envelope: JobEnvelope, ctx: Context) -> StageOutput:
    if envelope.input.kind is InputKind.TRANSCRIPT:
        return StageOutput(_redacted(_from_text(envelope, ctx)), provider="text", model=None)
    cloud = envelope.options.cloud_speech
    raw = _from_provider(envelope, ctx) if cloud else _from_audio(envelope, ctx)
    return StageOutput(_redacted(raw), provider=raw.provider, model=raw.model)


def _redacted(raw: RawTranscript) -> RawTranscript:
    """Card numbers and security codes never reach storage, the analyzer or the result (PCI)."""
    segments, found = redact_segments(raw.segments)
    return raw.model_copy(update={"segments": segments, "redactions": [*raw.redactions, *found]})


def _from_text(envelope: JobEnvelope, ctx: Context) -> RawTranscript:
    try:
        body = json.loads(ctx.blobs.get_bytes(envelope.input.blob_key))
        given = _TURNS.validate_python(body["transcript"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise InvalidInput("the stored transcript is not readable") from exc
    turns = parse_text(given) if isinstance(given, str) else given
    check_transcript(turns, ctx.settings)  # intake checked; the limits may have been lowered since
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
        path = _download_checked(envelope, ctx, Path(tmp))
        raw = ctx.transcriber.transcribe(path, language=envelope.options.language)
        if not any(s.channel is not None or s.speaker for s in raw.segments):
            # One track (mono, or several channels downmixed) carries both voices: separate
            # them while the audio is at hand.
            raw = ctx.separator.separate(path, raw, speakers=2)
        return raw


def _download_checked(envelope: JobEnvelope, ctx: Context, folder: Path) -> Path:
    path = folder / f"input.{envelope.input.format or 'bin'}"
    ctx.blobs.download(envelope.input.blob_key, path)
    with path.open("rb") as fh:
        fmt: AudioFormat | None = sniff(fh.read(64))
    if fmt is None:
        raise InvalidAudio("the input is not a recognised audio format")
    validate_audio(path, fmt)
    check_audio_seconds(wav_seconds(path), ctx.settings)  # other formats: the transcriber's probe
    return path


def _from_provider(envelope: JobEnvelope, ctx: Context) -> RawTranscript:
    """Submit once (the provider's id is kept), then check; NotReady while the provider works."""
    with transaction(ctx.sessions) as session:
        submitted = provider_checks.submission(session, envelope.job_id, Stage.TRANSCRIBE)
    if submitted is None:
        ref = _submit(envelope, ctx)
        # Committed before anything else can fail, so a re-run checks instead of paying twice.
        with transaction(ctx.sessions) as session:
            submitted = provider_checks.record_submission(
                session, envelope.job_id, Stage.TRANSCRIBE, ref=ref
            )
    raw = ctx.async_transcriber.check(submitted.ref)
    if raw is None:
        elapsed = (utcnow() - submitted.submitted_at).total_seconds()
        delay = provider_webhooks.next_check_delay(
            elapsed,
            schedule=ctx.settings.assemblyai_poll_schedule_s,
            long_wait_s=ctx.settings.provider_recheck_s,
        )
        raise NotReady("the speech provider is still transcribing", retry_after_s=delay)
    return raw


def _submit(envelope: JobEnvelope, ctx: Context) -> str:
    with tempfile.TemporaryDirectory(prefix="callintel-") as tmp:
        path = _download_checked(envelope, ctx, Path(tmp))
        request = _request(envelope, ctx, channels=wav_channels(path))
        url = None
        if ctx.settings.storage_public:
            url = ctx.blobs.presigned_url(envelope.input.blob_key, expires_s=PRESIGNED_URL_TTL_S)
        if url is not None:
            return ctx.async_transcriber.submit(audio_url=url, request=request)
        return ctx.async_transcriber.submit(audio=path, request=request)


def _request(envelope: JobEnvelope, ctx: Context, *, channels: int | None) -> TranscriptionRequest:
    """Stereo: one speaker per channel (the channel map gives roles); else speaker labels."""
    with transaction(ctx.sessions) as session:
        providers = config_for_job(session, envelope).config.providers
    stereo = channels == 2
    token = provider_webhooks.token_for(envelope.job_id, ctx.settings)
    # A completion webhook needs both an address we are reachable at and a token to check.
    webhook = provider_webhooks.callback_url(envelope.job_id, ctx.settings) if token else None
    return TranscriptionRequest(
        language=envelope.options.language,
        speaker_labels=not stereo,
        speakers_expected=None if stereo else (providers.speakers_expected or 2),
        multichannel=stereo,
        speech_models=providers.speech_models or ctx.settings.assemblyai_speech_models,
        webhook_url=webhook,
        webhook_auth_header_name=provider_webhooks.HEADER if webhook else None,
        webhook_auth_header_value=token if webhook else None,
    )
