"""Transcripts: what a transcriber produces and what diarization turns into role-attributed turns."""

from __future__ import annotations

from pydantic import Field

from schemas.common import Message, Role


class Word(Message):
    text: str
    start_ms: int
    end_ms: int
    confidence: float | None = None


class Segment(Message):
    """One stretch of speech as the transcriber heard it, before roles are known.

    `channel` is set for per-channel (stereo) transcription; `speaker` carries a label from the
    source (a provider's "A"/"B", or a name written in a text transcript).
    """

    start_ms: int
    end_ms: int
    text: str
    confidence: float | None = None
    channel: int | None = None
    speaker: str | None = None
    words: list[Word] = Field(default_factory=list)


class Redaction(Message):
    """Sensitive data removed from the text (e.g. a spoken card number); the text keeps a mask."""

    kind: str  # "card_number", "security_code", …
    start_ms: int
    end_ms: int
    utterance_id: str | None = None  # set once utterances exist (diarize)
    detail: str = ""  # non-sensitive description, e.g. "16 digits, Luhn-valid"


class RawTranscript(Message):
    """Artifact of the transcribe stage."""

    language: str | None = None
    language_confidence: float | None = None
    duration_ms: int
    channels: int
    segments: list[Segment]
    provider: str
    model: str | None = None
    audio_seconds: float = 0.0
    redactions: list[Redaction] = Field(default_factory=list)


class Utterance(Message):
    id: str
    speaker: str
    role: Role
    role_confidence: float
    start_ms: int
    end_ms: int
    text: str
    confidence: float | None = None
    words: list[Word] = Field(default_factory=list)


class Transcript(Message):
    """Artifact of the diarize stage: utterances in time order, each with a role."""

    language: str | None = None
    duration_ms: int
    channels: int
    utterances: list[Utterance]
    diarization: str  # "channel", "labels", "none", ...
    redactions: list[Redaction] = Field(default_factory=list)
