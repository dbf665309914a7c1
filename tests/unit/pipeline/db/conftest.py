"""Repository tests run on both databases the project supports: PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine, make_session_factory
from tests.support.services import postgres_database


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """The session's PostgreSQL database, or a fresh SQLite file migrated to head."""
    if request.param == "postgresql":
        yield request.getfixturevalue("sessions")
        return
    url = f"sqlite:///{tmp_path / 'repo.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (a throwaway PostgreSQL one, or a SQLite file) for migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    with postgres_database() as url:
        yield url
