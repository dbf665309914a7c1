"""Ports: the interfaces the domain needs from the outside world. Adapters implement them.

Every method raises only `pipeline.errors` types: adapters translate vendor exceptions.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol

from schemas.transcript import RawTranscript


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

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error (idempotent)."""

    def check(self) -> None:
        """Raise TransientError unless the store is reachable and writable (readiness probe)."""


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


class SentimentScorer(Protocol):
    name: str

    def score(self, text: str) -> float:
        """Compound sentiment of one utterance, -1 (negative) … 1 (positive)."""
