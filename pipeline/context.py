"""The per-process bundle of ports a stage runs with. Built after fork; providers load lazily and
are kept for the life of the process (one SDK client per worker process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.session import make_engine, make_session_factory
from pipeline.errors import PermanentError
from pipeline.ports import (
    Analyzer,
    AsyncTranscriber,
    BatchAnalyzer,
    BlobStore,
    SentimentScorer,
    SpeakerSeparator,
    Transcriber,
)
from pipeline.settings import Settings


@dataclass
class Context:
    settings: Settings
    sessions: sessionmaker[Session]
    blobs: BlobStore
    _transcriber: Transcriber | None = field(default=None, repr=False)
    _async_transcriber: AsyncTranscriber | None = field(default=None, repr=False)
    _separator: SpeakerSeparator | None = field(default=None, repr=False)
    _sentiment: SentimentScorer | None = field(default=None, repr=False)
    _analyzers: dict[str, Analyzer] = field(default_factory=dict, repr=False)

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from pipeline.adapters.providers import transcriber_from_settings

            self._transcriber = transcriber_from_settings(self.settings)
        return self._transcriber

    @property
    def async_transcriber(self) -> AsyncTranscriber:
        if self._async_transcriber is None:
            from pipeline.adapters.providers import async_transcriber_from_settings

            self._async_transcriber = async_transcriber_from_settings(self.settings)
        return self._async_transcriber

    @property
    def separator(self) -> SpeakerSeparator:
        if self._separator is None:
            from pipeline.adapters.providers import separator_from_settings

            self._separator = separator_from_settings(self.settings)
        return self._separator

    @property
    def sentiment(self) -> SentimentScorer:
        if self._sentiment is None:
            from pipeline.adapters.providers import sentiment_from_settings

            self._sentiment = sentiment_from_settings(self.settings)
        return self._sentiment

    def analyzer(self, name: str) -> Analyzer:
        """The analyzer called `name` ("local" or "gemini"), built once per process."""
        if name not in self._analyzers:
            from pipeline.adapters.providers import analyzer_from_settings

            self._analyzers[name] = analyzer_from_settings(self.settings, name)
        return self._analyzers[name]

    def batch_analyzer(self, name: str) -> BatchAnalyzer:
        """The analyzer called `name` for a batch-mode job (the same instance as `analyzer`)."""
        analyzer = self.analyzer(name)
        if not isinstance(analyzer, BatchAnalyzer):
            raise PermanentError(f"analyzer {name!r} has no batch mode", code="analyzer_error")
        return analyzer


def build_context(settings: Settings) -> Context:
    from pipeline.adapters.storage import blob_store_from_settings

    engine = make_engine(settings.database_url)
    return Context(
        settings=settings,
        sessions=make_session_factory(engine),
        blobs=blob_store_from_settings(settings),
    )
