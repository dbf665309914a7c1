"""Versioned tenant configuration: monotonic versions, readable history, concurrent writers on
PostgreSQL, and migration 0005 (schema = models, backfill, downgrade/upgrade) on both databases."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.migrate import alembic_config, upgrade
from pipeline.db.models import Tenant
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenant_config import list_versions, load_config, put_config
from pipeline.db.tenants import create_tenant
from pipeline.errors import PermanentError
from schemas.tenant import TenantConfig


def config(*packs: str, risk: str = "cancel") -> TenantConfig:
    return TenantConfig.model_validate(
        {"packs": list(packs), "context": {"risk_triggers": [risk]}, "dedupe": "sha256"}
    )


def new_tenant(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as session:
        return create_tenant(session, name="versioned").id


def test_versions_count_up_and_every_version_stays_readable(
    sessions: sessionmaker[Session],
) -> None:
    tenant_id = new_tenant(sessions)
    with sessions() as session:
        fresh = load_config(session, tenant_id)
    assert (fresh.version, fresh.config) == (0, TenantConfig())

    written = [config("a"), config("a", "b"), config(risk="lawyer")]
    numbers = []
    for i, body in enumerate(written):
        with transaction(sessions) as session:
            numbers.append(put_config(session, tenant_id, body, author="t", comment=f"c{i}"))
    assert numbers == [1, 2, 3]

    with sessions() as session:
        current = load_config(session, tenant_id)
        assert (current.version, current.config) == (3, written[2])
        for number, body in zip(numbers, written, strict=True):
            assert load_config(session, tenant_id, version=number).config == body
        # A job accepted before the first configuration is pinned to version 0: the defaults.
        assert load_config(session, tenant_id, version=0).config == TenantConfig()
        history = list_versions(session, tenant_id)
        row = session.get(Tenant, tenant_id)
        assert row is not None and row.config == written[2].model_dump(mode="json")
    assert [(h.version, h.author, h.comment) for h in history] == [
        (1, "t", "c0"),
        (2, "t", "c1"),
        (3, "t", "c2"),
    ]


def test_missing_tenant_and_missing_version_are_permanent_errors(
    sessions: sessionmaker[Session],
) -> None:
    tenant_id = new_tenant(sessions)
    with sessions() as session:
        with pytest.raises(PermanentError) as missing_version:
            load_config(session, tenant_id, version=7)
        with pytest.raises(PermanentError) as missing_tenant:
            load_config(session, "ten_nobody")
        with pytest.raises(PermanentError) as put_missing:
            put_config(session, "ten_nobody", config(), author="t")
    assert missing_version.value.code == "config_version_missing"
    assert missing_tenant.value.code == put_missing.value.code == "tenant_missing"


def test_a_stale_session_still_writes_the_next_version(sessions: sessionmaker[Session]) -> None:
    """A session that loaded the tenant before another writer committed re-reads it under lock."""
    tenant_id = new_tenant(sessions)
    with sessions() as stale, stale.begin():
        loaded = stale.get(Tenant, tenant_id)
        assert loaded is not None and loaded.config_version == 0
        with transaction(sessions) as other:
            assert put_config(other, tenant_id, config("a"), author="other") == 1
        assert put_config(stale, tenant_id, config("b"), author="stale") == 2


def _lock_waiters(sessions: sessionmaker[Session]) -> int:
    """Sessions of this database blocked on a lock (the second writer, on the tenant row)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with sessions() as session:
        return int(session.execute(query).scalar_one())


def test_concurrent_writers_on_postgresql_get_distinct_versions(
    sessions: sessionmaker[Session],
) -> None:
    tenant_id = new_tenant(sessions)
    results: dict[str, Any] = {}
    first_written, release_first = threading.Event(), threading.Event()

    def first() -> None:
        with transaction(sessions) as session:
            results["first"] = put_config(session, tenant_id, config("a"), author="first")
            first_written.set()
            release_first.wait(timeout=60)  # hold the lock until the second writer waits on it

    def second() -> None:
        try:
            with transaction(sessions) as session:
                results["second"] = put_config(session, tenant_id, config("b"), author="second")
        except Exception as exc:  # reported below: a duplicate version would be an IntegrityError
            results["second"] = exc

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_written.wait(timeout=60)
    threads[1].start()
    deadline = time.monotonic() + 60
    while _lock_waiters(sessions) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # wait for a condition, not a duration: the second writer is blocked
    waiting = _lock_waiters(sessions)
    release_first.set()
    for thread in threads:
        thread.join(timeout=60)

    assert waiting >= 1  # the two writers really overlapped
    assert results == {"first": 1, "second": 2}
    with sessions() as session:
        assert [h.author for h in list_versions(session, tenant_id)] == ["first", "second"]


def test_migration_records_existing_configs_and_round_trips(empty_url: str) -> None:
    upgrade(empty_url, revision="0004_provider_checks")
    engine = make_engine(empty_url)
    insert = "INSERT INTO tenants (id, name, config, created_at) VALUES (:id, 'n', :config, :now)"
    try:
        with engine.begin() as conn:
            for tenant_id, body in (("ten_set", '{"dedupe": "sha256"}'), ("ten_new", "{}")):
                stmt = text(insert.replace(":config", "CAST(:config AS JSONB)"))
                stmt = stmt if engine.dialect.name == "postgresql" else text(insert)
                conn.execute(
                    stmt, {"id": tenant_id, "config": body, "now": "2026-01-01T00:00:00+00:00"}
                )
        upgrade(empty_url)
        with make_session_factory(engine)() as session:
            assert load_config(session, "ten_set").version == 1
            assert load_config(session, "ten_set", version=1).config.dedupe == "sha256"
            assert load_config(session, "ten_new").version == 0
            assert [h.author for h in list_versions(session, "ten_set")] == ["migration"]
        command.downgrade(alembic_config(empty_url), "0004_provider_checks")
        assert "tenant_config_versions" not in inspect(engine).get_table_names()
        assert "expires_at" not in {c["name"] for c in inspect(engine).get_columns("api_keys")}
        upgrade(empty_url)
        assert "config_version" in {c["name"] for c in inspect(engine).get_columns("tenants")}
    finally:
        engine.dispose()
