"""Shared vocabulary: enums, base models and the result schema version."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

RESULT_SCHEMA_VERSION = "2026-11-01"
ENVELOPE_SCHEMA_VERSION = 1


class Message(BaseModel):
    """Data we read from our own queue or storage: unknown fields are tolerated (rolling upgrades)."""

    model_config = ConfigDict(extra="ignore")


class Strict(BaseModel):
    """Data a client sends us: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Role(StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    UNKNOWN = "unknown"


class Stage(StrEnum):
    """Pipeline stages, in order. The value is also the artifact name and the Celery task suffix."""

    TRANSCRIBE = "transcribe"
    DIARIZE = "diarize"
    ANALYZE = "analyze"
    SCORE = "score"
    PERSIST = "persist"


STAGES: tuple[Stage, ...] = tuple(Stage)


class JobStatus(StrEnum):
    QUEUED = "queued"
    TRANSCRIBING = "transcribing"
    DIARIZING = "diarizing"
    ANALYZING = "analyzing"
    SCORING = "scoring"
    PERSISTING = "persisting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a batch item cancelled before it was released

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


UNFINISHED: tuple[str, ...] = tuple(s.value for s in JobStatus if not s.terminal)

RUNNING_STATUS: dict[Stage, JobStatus] = {
    Stage.TRANSCRIBE: JobStatus.TRANSCRIBING,
    Stage.DIARIZE: JobStatus.DIARIZING,
    Stage.ANALYZE: JobStatus.ANALYZING,
    Stage.SCORE: JobStatus.SCORING,
    Stage.PERSIST: JobStatus.PERSISTING,
}


class InputKind(StrEnum):
    AUDIO = "audio"
    TRANSCRIPT = "transcript"
