"""Migration 0002_webhooks builds exactly what the webhook models declare, on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine

TABLES = {"webhook_endpoints", "webhook_callback_secrets", "webhook_deliveries", "webhook_attempts"}


def test_upgrade_builds_the_tables(empty_url: str) -> None:
    url = empty_url
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
