"""Migration 0009_retention applies over 0008_recovery and downgrades, keeping the jobs."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from pipeline.db.migrate import alembic_config, upgrade
from pipeline.db.session import make_engine, make_session_factory, transaction
from tests.support.jobs import queued_job


def shape(url: str) -> tuple[bool, bool]:
    """Whether `audit_events` exists, and whether jobs have `input_purged_at`."""
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("jobs")}
        return "audit_events" in inspector.get_table_names(), "input_purged_at" in columns
    finally:
        engine.dispose()


def test_upgrade_keeps_jobs_and_downgrade_removes_what_it_added(empty_url: str) -> None:
    upgrade(empty_url, revision="0008_recovery")
    assert shape(empty_url) == (False, False)
    engine = make_engine(empty_url)
    try:
        upgrade(empty_url)
        assert shape(empty_url) == (True, True)
        with transaction(make_session_factory(engine)) as session:
            job = queued_job(session)
            assert job.input_purged_at is None

        command.downgrade(alembic_config(empty_url), "0008_recovery")
        assert shape(empty_url) == (False, False)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM jobs")) == 1
        upgrade(empty_url)
        assert shape(empty_url) == (True, True)
    finally:
        engine.dispose()
