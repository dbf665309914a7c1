"""Choose speech and sentiment providers from settings. Imports heavy packages only when chosen."""

from __future__ import annotations

from pipeline.ports import SentimentScorer, Transcriber
from pipeline.settings import Settings


def transcriber_from_settings(settings: Settings) -> Transcriber:
    if settings.transcriber == "local":
        from pipeline.adapters.local_asr import WhisperTranscriber

        return WhisperTranscriber(
            model_path=settings.whisper_model, cpu_threads=settings.whisper_threads
        )
    raise ValueError(f"unknown TRANSCRIBER {settings.transcriber!r}")


def sentiment_from_settings(settings: Settings) -> SentimentScorer:
    from pipeline.adapters.vader import VaderScorer

    return VaderScorer()
