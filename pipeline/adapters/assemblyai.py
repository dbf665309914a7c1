"""AssemblyAI behind the `AsyncTranscriber` port: `submit` returns a job id at once, `check` asks once.

One explicit SDK client per instance and process (never the SDK's global settings); every vendor
exception goes through `translate_error` and leaves this module as a `pipeline.errors` type.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path

import assemblyai as aai
import httpx
import pydantic
from assemblyai import api as aai_api
from assemblyai import types as aai_types
from assemblyai.prerecorded.v2 import api as transcript_api  # canonical home of aai.api's calls

from pipeline.errors import (
    InvalidInput,
    PermanentError,
    PipelineError,
    ProviderRejected,
    TransientError,
)
from pipeline.metrics import provider_call
from pipeline.ports import TranscriptionRequest
from schemas.transcript import RawTranscript, Segment, Word

PROVIDER = "assemblyai"
DEFAULT_MODEL = "universal"  # what AssemblyAI runs when no speech_models are asked for
MESSAGE_CHARS = 300
SENTENCE_GAP_MS = 1500  # words-only transcripts: a pause this long also ends a segment
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")  # presigned URLs carry signatures
_PENDING = (aai_types.TranscriptStatus.queued, aai_types.TranscriptStatus.processing)
# Passing faults: the connection broke or the answer was garbled on the way.
_TRANSIENT_HTTPX = (
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.DecodingError,
)


class AssemblyAITranscriber:
    """Cloud transcription with speaker labels (mono) or one speaker per channel (stereo).

    The SDK never retries and its `transcribe()` polls forever, so this class only submits and
    checks once; the caller schedules re-checks (or waits for the completion webhook).
    """

    name = PROVIDER
    model = DEFAULT_MODEL

    def __init__(self, *, api_key: str, base_url: str, timeout_s: float) -> None:
        if not api_key:
            raise PermanentError("AssemblyAI API key is empty", code="provider_not_configured")
        self._settings = aai.Settings(api_key=api_key, base_url=base_url, http_timeout=timeout_s)
        self._secrets = (api_key,)
        self._client: aai.Client | None = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()

    def submit(
        self,
        *,
        audio: Path | None = None,
        audio_url: str | None = None,
        request: TranscriptionRequest,
    ) -> str:
        """Upload `audio` (or use `audio_url`) and create a transcript; returns its id at once.

        Not idempotent: each call creates a new transcript on AssemblyAI's side. Raises
        InvalidInput for unusable options or an unreadable file, TransientError for 429/5xx/
        timeouts/connection faults, ProviderRejected for other 4xx (`provider_auth` on 401/403).
        """
        if (audio is None) == (audio_url is None):
            raise InvalidInput("give exactly one of audio and audio_url")
        http = self._http()
        with provider_call(PROVIDER, "submit"):
            try:
                url = audio_url if audio_url is not None else _upload(http, audio)
                created = transcript_api.create_transcript(http, _transcript_request(url, request))
            except PipelineError:
                raise
            except Exception as exc:
                raise translate_error(exc, secrets=self._secrets) from exc
        if not created.id:
            raise PermanentError("AssemblyAI returned no transcript id", code="provider_error")
        return created.id

    def check(self, provider_job_id: str) -> RawTranscript | None:
        """One GET: None while queued or processing, the transcript once completed.

        Safe to repeat. A transcript that ended in error raises
        ProviderRejected(code="transcription_failed") with AssemblyAI's reason.
        """
        with provider_call(PROVIDER, "check"):
            try:
                response = transcript_api.get_transcript(self._http(), provider_job_id)
            except Exception as exc:
                raise translate_error(exc, secrets=self._secrets) from exc
        if response.status in _PENDING:
            return None
        if response.status == aai_types.TranscriptStatus.error:
            reason = _scrub(response.error or "no reason given", self._secrets)
            raise ProviderRejected(
                f"AssemblyAI could not transcribe the audio: {reason}", code="transcription_failed"
            )
        try:
            return _raw_transcript(response, fallback_model=self.model)
        except pydantic.ValidationError as exc:
            raise PermanentError(
                f"AssemblyAI returned an unusable transcript ({exc.error_count()} errors)",
                code="provider_error",
            ) from exc

    def close(self) -> None:
        """Close pooled connections (tests, shutdown). The next call opens a new client."""
        with self._lock:
            if self._client is not None:
                self._client.http_client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        """This process's client: a pooled connection must not be shared across a fork."""
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = aai.Client(settings=self._settings)
                self._client_pid = os.getpid()
            return self._client.http_client


def translate_error(exc: BaseException, *, secrets: Sequence[str] = ()) -> PipelineError:
    """Map any exception from the SDK (or httpx below it) to the pipeline's error tree.

    429 → TransientError(provider_rate_limited); 408/5xx → TransientError(provider_unavailable);
    timeouts → TransientError(provider_timeout); connection faults → provider_unavailable;
    401/403 → ProviderRejected(provider_auth); other 4xx → ProviderRejected(provider_rejected);
    anything else → PermanentError(provider_error). `secrets` are removed from every message.
    """
    if isinstance(exc, PipelineError):
        return exc
    detail = _scrub(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, aai_types.AssemblyAIError):
        return _from_status(exc.status_code, detail)
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(
            f"AssemblyAI did not answer in time ({type(exc).__name__})", code="provider_timeout"
        )
    if isinstance(exc, _TRANSIENT_HTTPX):
        return TransientError(
            f"AssemblyAI could not be reached ({type(exc).__name__}: {detail})",
            code="provider_unavailable",
        )
    return PermanentError(
        f"AssemblyAI call failed ({type(exc).__name__}: {detail})", code="provider_error"
    )


def _from_status(status: int | None, detail: str) -> PipelineError:
    if status in (401, 403):
        # The provider's text is dropped on purpose: nothing about credentials goes in a job error.
        return ProviderRejected(
            f"AssemblyAI refused the API key (HTTP {status})", code="provider_auth"
        )
    if status == 429:
        return TransientError(
            "AssemblyAI rate limit reached (HTTP 429)", code="provider_rate_limited"
        )
    if status is not None and (status == 408 or status >= 500):
        return TransientError(
            f"AssemblyAI unavailable (HTTP {status}): {detail}", code="provider_unavailable"
        )
    if status is not None and 400 <= status < 500:
        return ProviderRejected(
            f"AssemblyAI rejected the request (HTTP {status}): {detail}",
            code="provider_rejected",
        )
    return PermanentError(f"AssemblyAI error (HTTP {status}): {detail}", code="provider_error")


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Drop secrets and URL query strings, then clip to MESSAGE_CHARS."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_QUERY.sub(r"\1?…", text)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _upload(http: httpx.Client, audio: Path | None) -> str:
    """Stream a local file to /v2/upload; returns the private URL AssemblyAI can fetch."""
    if audio is None:
        raise InvalidInput("no audio to upload")
    try:
        handle = audio.open("rb")
    except OSError as exc:
        raise InvalidInput(f"audio file cannot be read ({type(exc).__name__})") from exc
    with handle:
        return aai_api.upload_file(http, handle)


def _transcript_request(
    audio_url: str, request: TranscriptionRequest
) -> aai_types.TranscriptRequest:
    """The POST /v2/transcript body. Options left None are not sent (the API's defaults apply)."""
    # Stereo means one speaker per channel: asking for speaker labels as well would diarize
    # within each channel and relabel speakers ("1A", "1B"), which the roles step does not expect.
    labels = request.speaker_labels and not request.multichannel
    webhook = request.webhook_url is not None
    try:
        return aai_types.TranscriptRequest(
            audio_url=audio_url,
            multichannel=True if request.multichannel else None,
            speaker_labels=True if labels else None,
            speakers_expected=request.speakers_expected if labels else None,
            language_code=request.language,
            language_detection=True if request.language is None else None,
            speech_models=list(request.speech_models) if request.speech_models else None,
            webhook_url=request.webhook_url,
            webhook_auth_header_name=request.webhook_auth_header_name if webhook else None,
            webhook_auth_header_value=request.webhook_auth_header_value if webhook else None,
        )
    except pydantic.ValidationError as exc:
        raise InvalidInput(f"unusable AssemblyAI options ({exc.error_count()} errors)") from exc


def _raw_transcript(
    response: aai_types.TranscriptResponse, *, fallback_model: str
) -> RawTranscript:
    """Utterances become segments (channel 0-based, or speaker "A"/"B"); words-only → sentences."""
    if response.utterances:
        segments = [_segment(u, u.words, u.text, u.confidence) for u in response.utterances]
    else:
        segments = _sentences(response.words or [])
    if not segments and response.text:
        segments = [Segment(start_ms=0, end_ms=0, text=response.text.strip())]
    segments.sort(key=lambda s: (s.start_ms, s.channel or 0))
    last_end = max((s.end_ms for s in segments), default=0)
    duration_ms = max((response.audio_duration or 0) * 1000, last_end)
    multichannel = bool(response.multichannel)
    return RawTranscript(
        language=_language(response.language_code),
        language_confidence=response.language_confidence,
        duration_ms=duration_ms,
        channels=(response.audio_channels or 2) if multichannel else 1,
        segments=segments,
        provider=PROVIDER,
        model=_model(response) or fallback_model,
        audio_seconds=float(response.audio_duration or duration_ms / 1000),
    )


def _language(code: str | aai_types.LanguageCode | None) -> str | None:
    if isinstance(code, Enum):  # the SDK may parse a known code into its enum
        return str(code.value)
    return code or None


def _model(response: aai_types.TranscriptResponse) -> str | None:
    if response.speech_model_used:
        return response.speech_model_used
    if response.speech_models:
        return ",".join(response.speech_models)
    return response.speech_model.value if response.speech_model else None


def _segment(
    head: aai_types.Word,
    words: Sequence[aai_types.Word],
    text: str,
    confidence: float | None,
) -> Segment:
    """One segment; `head` (an utterance or its first word) says whose speech it is."""
    channel = int(head.channel) - 1 if head.channel else None
    return Segment(
        start_ms=words[0].start if words else head.start,
        end_ms=max(words[-1].end, words[-1].start) if words else head.end,
        text=text.strip(),
        confidence=confidence,
        channel=channel,
        speaker=head.speaker if channel is None else None,
        words=[_word(w) for w in words],
    )


def _word(word: aai_types.Word) -> Word:
    return Word(
        text=word.text,
        start_ms=word.start,
        end_ms=max(word.end, word.start),
        confidence=word.confidence,
    )


def _sentences(words: Sequence[aai_types.Word]) -> list[Segment]:
    """Words without utterances: a segment ends at . ? ! , a long pause, or a channel change."""
    segments: list[Segment] = []
    chunk: list[aai_types.Word] = []
    for word in words:
        if chunk and _breaks(chunk[-1], word):
            segments.append(_chunk_segment(chunk))
            chunk = []
        chunk.append(word)
    if chunk:
        segments.append(_chunk_segment(chunk))
    return segments


def _breaks(previous: aai_types.Word, word: aai_types.Word) -> bool:
    return (
        previous.text.endswith((".", "?", "!"))
        or word.start - previous.end >= SENTENCE_GAP_MS
        or (previous.channel, previous.speaker) != (word.channel, word.speaker)
    )


def _chunk_segment(chunk: Sequence[aai_types.Word]) -> Segment:
    text = " ".join(w.text for w in chunk)
    return _segment(chunk[0], chunk, text, _mean(w.confidence for w in chunk))


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(sum(found) / len(found), 4) if found else None
