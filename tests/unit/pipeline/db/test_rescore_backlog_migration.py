"""Migration 0010_rescore_backlog: existing rescores count as released; a downgrade gives each
waiting rescore the outbox row the previous code would have written, so none is stranded."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from pipeline.db import rescores
from pipeline.db.migrate import alembic_config, upgrade
from pipeline.db.session import make_engine, make_session_factory, transaction
from tests.support.jobs import queued_job


def test_downgrade_publishes_waiting_rescores_and_upgrade_marks_them_released(
    empty_url: str,
) -> None:
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            rescore_id = rescores.create_rescore(session, queued_job(session), reanalyze=False).id
        command.downgrade(alembic_config(empty_url), "0009_retention")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT status FROM rescores")) == "queued"
            payload = conn.scalar(text("SELECT payload FROM outbox WHERE topic = 'rescore.start'"))
            assert payload == {"rescore_id": rescore_id, "analyzer": None}
        upgrade(empty_url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, released_at, created_at FROM rescores")).one()
            assert row.status == "queued" and row.released_at == row.created_at
    finally:
        engine.dispose()
