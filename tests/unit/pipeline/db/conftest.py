"""Repository tests on PostgreSQL, the one engine the project runs on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.services import postgres_database


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The session's migrated PostgreSQL database."""
    return sessions


@pytest.fixture
def empty_url() -> Iterator[str]:
    """An empty throwaway PostgreSQL database, for migration tests."""
    with postgres_database() as url:
        yield url
