"""Capacity limits per input kind: the longest input whose slowest stage still finishes well within
STAGE_SOFT_LIMIT_S (figures and derivation in docs/limits.md). Checked at intake where the input
can be measured there, else by the stage that first can (audio duration at transcribe)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import TooLong
from pipeline.settings import Settings
from schemas.api import TranscriptTurn


def check_transcript(turns: Sequence[TranscriptTurn], settings: Settings) -> None:
    """TooLong when the turns hold more than MAX_UTTERANCES turns or MAX_TRANSCRIPT_CHARS
    characters of text."""
    _check(
        len(turns),
        settings.max_utterances,
        setting="MAX_UTTERANCES",
        unit="utterances",
        settings=settings,
    )
    _check(
        sum(len(t.text) for t in turns),
        settings.max_transcript_chars,
        setting="MAX_TRANSCRIPT_CHARS",
        unit="characters",
        settings=settings,
    )


def check_audio_seconds(seconds: float | None, settings: Settings) -> None:
    """TooLong when a recording lasts more than MAX_AUDIO_SECONDS; None (unknown) passes."""
    if seconds is not None:
        _check(
            int(seconds + 0.999),  # a recording 0.2 s over is over
            settings.max_audio_seconds,
            setting="MAX_AUDIO_SECONDS",
            unit="seconds",
            settings=settings,
        )


def _check(measured: int, limit: int, *, setting: str, unit: str, settings: Settings) -> None:
    if measured > limit:
        message = (
            f"the input has {measured} {unit}; {setting} is {limit} {unit}, the most its "
            f"processing finishes well within the {settings.stage_soft_limit_s} s stage limit "
            "(docs/limits.md)"
        )
        raise TooLong(message, setting=setting, limit=limit, measured=measured, unit=unit)
