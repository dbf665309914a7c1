"""Migration 0002_webhooks builds exactly what the webhook models declare, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pipeline.db.migrate import upgrade
from pipeline.db.registry import Base
from pipeline.db.session import make_engine
from pipeline.settings import Settings

TABLES = {"webhook_endpoints", "webhook_callback_secrets", "webhook_deliveries", "webhook_attempts"}


def _ours(diff: Any) -> bool:
    """A difference that concerns the webhook tables or the column this migration adds to jobs."""
    text = repr(diff)
    return any(t in text for t in TABLES) or "callback_url" in text


def _differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return [d for d in compare_metadata(context, Base.metadata) if _ours(d)]
    finally:
        engine.dispose()


def test_postgresql_schema_matches_the_models(settings: Settings) -> None:
    assert _differences(settings.database_url) == []


def test_sqlite_upgrade_builds_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= TABLES
        assert "callback_url" in {c["name"] for c in inspector.get_columns("jobs")}
        indexes = {i["name"] for i in inspector.get_indexes("webhook_deliveries")}
        assert "ix_webhook_deliveries_due" in indexes
    finally:
        engine.dispose()
