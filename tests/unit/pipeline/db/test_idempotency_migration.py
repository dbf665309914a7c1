"""Migration 0002_idempotency: the input_sha256 backfill of jobs created before it."""

from __future__ import annotations

import json

from sqlalchemy import inspect, text

from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine

SHA = "ab" * 32


def test_jobs_from_before_the_migration_get_their_input_hash(empty_url: str) -> None:
    upgrade(empty_url, revision="0001")
    engine = make_engine(empty_url)
    envelope = json.dumps({"job_id": "job_old", "input": {"sha256": SHA}})
    as_json = "CAST(:envelope AS JSONB)" if engine.dialect.name == "postgresql" else ":envelope"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name, config, created_at) VALUES ('ten_1', 't', '{}', :now)"
                ),
                {"now": "2026-01-01T00:00:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO jobs (id, tenant_id, status, input_kind, envelope, metadata, redrives,"
                    " created_at, updated_at) VALUES ('job_old', 'ten_1', 'queued', 'audio',"
                    f" {as_json}, '{{}}', 0, :now, :now)"
                ),
                {"envelope": envelope, "now": "2026-01-01T00:00:00+00:00"},
            )
        upgrade(empty_url, revision="0002_idempotency")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT input_sha256 FROM jobs")).scalar_one() == SHA
        inspector = inspect(engine)
        assert "idempotency_keys" in inspector.get_table_names()
        assert "ix_jobs_tenant_input_sha256" in {i["name"] for i in inspector.get_indexes("jobs")}
        unique = inspector.get_unique_constraints("idempotency_keys")
        assert [u["column_names"] for u in unique] == [["tenant_id", "key"]]
    finally:
        engine.dispose()
