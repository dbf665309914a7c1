"""What the app holds for its requests: settings, a session factory and the blob store."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline.adapters.storage import blob_store_from_settings
from pipeline.db.session import make_engine, make_session_factory
from pipeline.ports import BlobStore
from pipeline.settings import Settings

KEY = "callintel"


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore


def init_app(app: Flask, settings: Settings) -> None:
    # Engines are built lazily per worker process by SQLAlchemy's pool, so gunicorn's fork is safe:
    # no connection is opened here.
    engine = make_engine(settings.database_url)
    app.extensions[KEY] = AppState(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        blobs=blob_store_from_settings(settings),
    )


def state() -> AppState:
    value: AppState = current_app.extensions[KEY]
    return value
