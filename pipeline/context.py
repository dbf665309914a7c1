"""The per-process bundle of ports a stage runs with. Built after fork; providers load lazily."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.session import make_engine, make_session_factory
from pipeline.ports import BlobStore, SentimentScorer, Transcriber
from pipeline.settings import Settings


@dataclass
class Context:
    settings: Settings
    sessions: sessionmaker[Session]
    blobs: BlobStore
    _transcriber: Transcriber | None = field(default=None, repr=False)
    _sentiment: SentimentScorer | None = field(default=None, repr=False)

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from pipeline.adapters.providers import transcriber_from_settings

            self._transcriber = transcriber_from_settings(self.settings)
        return self._transcriber

    @property
    def sentiment(self) -> SentimentScorer:
        if self._sentiment is None:
            from pipeline.adapters.providers import sentiment_from_settings

            self._sentiment = sentiment_from_settings(self.settings)
        return self._sentiment


def build_context(settings: Settings) -> Context:
    from pipeline.adapters.storage import blob_store_from_settings

    engine = make_engine(settings.database_url)
    return Context(
        settings=settings,
        sessions=make_session_factory(engine),
        blobs=blob_store_from_settings(settings),
    )
