"""Build providers from settings. Each import happens only when that provider is chosen, so the API
process and a worker that never uses a model never load it.

A cloud provider that is chosen but not configured is a permanent job error
(`provider_not_configured`): there is no silent fallback to a local provider.
"""

from __future__ import annotations

from functools import partial

from pipeline.errors import PermanentError
from pipeline.limits import check_audio_seconds
from pipeline.ports import (
    Analyzer,
    AsyncTranscriber,
    SentimentScorer,
    SpeakerSeparator,
    Transcriber,
)
from pipeline.settings import Settings

NOT_CONFIGURED = "provider_not_configured"


def transcriber_from_settings(settings: Settings) -> Transcriber:
    """The local (in-process) transcriber."""
    from pipeline.adapters.local_asr import WhisperTranscriber

    return WhisperTranscriber(
        model_path=settings.whisper_model,
        cpu_threads=settings.whisper_threads,
        check_duration=partial(check_audio_seconds, settings=settings),
    )


def async_transcriber_from_settings(settings: Settings) -> AsyncTranscriber:
    """AssemblyAI: one explicit client per process, never the SDK's global settings."""
    if settings.assemblyai_api_key is None:
        raise PermanentError(
            "AssemblyAI is selected but ASSEMBLYAI_API_KEY is not set", code=NOT_CONFIGURED
        )
    from pipeline.adapters.assemblyai import AssemblyAITranscriber

    return AssemblyAITranscriber(
        api_key=settings.assemblyai_api_key.get_secret_value(),
        base_url=settings.assemblyai_base_url,
        timeout_s=settings.assemblyai_timeout_s,
    )


def separator_from_settings(settings: Settings) -> SpeakerSeparator:
    from pipeline.adapters.local_diarize import ResemblyzerSeparator
    from pipeline.adapters.torch_threads import limit_torch_threads

    limit_torch_threads(settings.torch_threads)
    return ResemblyzerSeparator()


def analyzer_from_settings(settings: Settings, name: str) -> Analyzer:
    if name == "local":
        from pipeline.adapters.local_analysis import LocalAnalyzer
        from pipeline.adapters.torch_threads import limit_torch_threads

        limit_torch_threads(settings.torch_threads)
        return LocalAnalyzer(
            window_utterances=settings.analysis_window_utterances,
            window_overlap=settings.analysis_window_overlap,
        )
    if name == "gemini":
        if settings.gemini_api_key is None:
            raise PermanentError(
                "Gemini is selected but GEMINI_API_KEY is not set", code=NOT_CONFIGURED
            )
        from pipeline.adapters.gemini import GeminiAnalyzer

        return GeminiAnalyzer(
            api_key=settings.gemini_api_key.get_secret_value(),
            base_url=settings.gemini_base_url,
            model=settings.gemini_model,
            timeout_s=settings.gemini_timeout_s,
            output_attempts=settings.gemini_output_attempts,
            chunk_chars=settings.gemini_chunk_chars,
            usd_per_mtok_in=settings.gemini_usd_per_mtok_in,
            usd_per_mtok_out=settings.gemini_usd_per_mtok_out,
            batch_discount=settings.gemini_batch_discount,
        )
    raise PermanentError(f"unknown analyzer {name!r}", code=NOT_CONFIGURED)


def sentiment_from_settings(settings: Settings) -> SentimentScorer:
    from pipeline.adapters.vader import VaderScorer

    return VaderScorer()
