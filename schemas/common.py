"""Shared vocabulary: enums, base models and the result schema version."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

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


def _valid_channel_map(value: dict[int, Role]) -> dict[int, Role]:
    """Channels are numbered from 0, and agent or customer speak on one channel each ("unknown"
    may mark several). Whether the recording has the channels is checked where it is known."""
    negative = sorted(c for c in value if c < 0)
    if negative:
        raise ValueError(f"channel {negative[0]} is negative: channels are numbered from 0")
    for role in (Role.AGENT, Role.CUSTOMER):
        channels = sorted(c for c, r in value.items() if r is role)
        if len(channels) > 1:
            listed = " and ".join(str(c) for c in channels)
            raise ValueError(
                f"role '{role}' is named twice (channels {listed}); give it one channel"
            )
    return value


ChannelMap = Annotated[dict[int, Role], AfterValidator(_valid_channel_map)]
"""Audio channel index → role; every schema that takes a channel map uses this one type."""


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
