"""Ports: the interfaces the domain needs from the outside world. Adapters implement them.

Every method raises only `pipeline.errors` types: adapters translate vendor exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from schemas.analysis import CallMetrics, Insights, SemanticQuestion, SentimentReport
from schemas.tenant import ClientContext
from schemas.transcript import RawTranscript, Transcript


@dataclass(frozen=True)
class BlobStat:
    """What a store knows of one object without reading it: its key, size and version tag."""

    key: str
    size: int
    etag: str  # changes whenever the object's content may have changed; opaque otherwise


class BlobStore(Protocol):
    """Keyed byte storage (S3, a local directory). Keys are '/'-separated, relative, never '..'."""

    def put_stream(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        """Store everything `stream` yields under `key`, reading it in bounded chunks.

        Overwrites an existing object. A failure leaves no object under `key`.
        """

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store a small object (an artifact) under `key`, replacing any existing one."""

    def get_bytes(self, key: str) -> bytes:
        """Return a small object. Raises BlobNotFound when absent."""

    def download(self, key: str, dest: Path) -> None:
        """Copy an object to a local file, streaming. Raises BlobNotFound when absent."""

    def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes of an object (all of it when shorter). Raises BlobNotFound."""

    def stat(self, key: str) -> BlobStat:
        """The object's size and version tag, without reading it. Raises BlobNotFound."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error (idempotent)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder `prefix` (keys starting with `prefix` + "/") and
        return how many were removed. Idempotent: an empty or missing folder removes nothing.

        Raises InvalidInput for an empty or unsafe prefix (never "everything").
        """

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        """A time-limited URL anyone holding it can GET the object from, or None if unsupported."""

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str | None:
        """A time-limited URL anyone holding it can PUT the object to (with exactly this
        Content-Type), or None if the store cannot accept uploads directly."""

    def check(self) -> None:
        """Raise TransientError unless the store is reachable and writable (readiness probe)."""


class BlobSource(Protocol):
    """A tenant's own bucket that a batch imports from (read only). Raises pipeline.errors only."""

    def list_page(
        self, prefix: str, *, token: str | None, limit: int = 1000
    ) -> tuple[list[BlobStat], str | None]:
        """One page of objects under `prefix` and the token of the next page (None: the last)."""

    def head(self, key: str, size: int) -> bytes: ...

    def copy_into(self, key: str, store: BlobStore, dest_key: str, *, content_type: str) -> None:
        """Copy one object into our store under `dest_key` (idempotent: it overwrites)."""


class Transcriber(Protocol):
    """Speech to text. `name` and `model` are recorded in the result's provenance."""

    name: str
    model: str

    def transcribe(self, audio: Path, *, language: str | None) -> RawTranscript:
        """Transcribe a local audio file; stereo audio is transcribed per channel.

        Raises InvalidAudio when the file cannot be decoded, TransientError on passing faults,
        ProviderRejected when the provider refuses the work (e.g. a language it cannot do),
        InvalidInput for unusable options.
        """


@dataclass(frozen=True)
class TranscriptionRequest:
    """What an asynchronous (cloud) transcription is asked to do."""

    language: str | None = None  # None: detect the language
    speaker_labels: bool = True  # mono: the provider separates speakers ("A", "B")
    speakers_expected: int | None = 2
    multichannel: bool = False  # stereo: one speaker per channel (channel "1", "2")
    speech_models: list[str] | None = None
    webhook_url: str | None = None  # the provider calls it when done (needs PUBLIC_BASE_URL)
    webhook_auth_header_name: str | None = None
    webhook_auth_header_value: str | None = None


class AsyncTranscriber(Protocol):
    """A provider that transcribes on its side: submit returns at once, check never waits.

    Errors: TransientError for 429/5xx/timeouts/connection faults (retried), ProviderRejected for
    other 4xx and for a transcript that ended in error (code `transcription_failed`, the provider's
    message kept), InvalidInput for unusable options.
    """

    name: str
    model: str

    def submit(
        self,
        *,
        audio: Path | None = None,
        audio_url: str | None = None,
        request: TranscriptionRequest,
    ) -> str:
        """Start a transcription of a local file (uploaded) or a URL; returns the provider's job id."""

    def check(self, provider_job_id: str) -> RawTranscript | None:
        """One status request: the transcript when completed, None while queued or processing."""


class SpeakerSeparator(Protocol):
    """Splits mono speech between speakers (local diarization)."""

    name: str

    def separate(self, audio: Path, raw: RawTranscript, *, speakers: int = 2) -> RawTranscript:
        """Return `raw` with every segment's `speaker` set ("A", "B", …), segments split at word
        boundaries where the speaker changes. Raises InvalidAudio if the audio cannot be read."""


@dataclass(frozen=True)
class AnalysisRequest:
    transcript: Transcript  # role-attributed; utterance ids are what evidence cites
    metrics: CallMetrics
    sentiment: SentimentReport
    context: ClientContext  # from the tenant's configuration, never from the request
    questions: list[SemanticQuestion] = field(default_factory=list)
    call_type: str | None = None


class Analyzer(Protocol):
    """Summary, intents, action items, outcome, violations and risk factors, each with evidence.

    Errors: TransientError for passing provider faults (retried by the task), ProviderRejected for
    refusals, PermanentError(code="analyzer_invalid_output") when the output stays invalid.
    """

    name: str
    model: str

    def analyze(self, request: AnalysisRequest) -> Insights: ...


@runtime_checkable
class BatchAnalyzer(Analyzer, Protocol):
    """An analyzer with a provider batch mode (Gemini's Batch API): submit returns at once, check
    never waits. Same prompts and validation as `analyze`, at the provider's batch price.

    Errors as `Analyzer`'s; a batch that failed, was cancelled or expired is ProviderRejected.
    """

    def submit_batch(self, request: AnalysisRequest) -> str:
        """Start a batch job for the request; returns the provider's batch name."""

    def check_batch(self, name: str, request: AnalysisRequest) -> Insights | None:
        """One status request: the insights when done, None while the batch waits or runs."""


class SentimentScorer(Protocol):
    name: str

    def score(self, text: str) -> float:
        """Compound sentiment of one utterance, -1 (negative) … 1 (positive)."""
