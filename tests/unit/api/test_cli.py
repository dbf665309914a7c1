"""The `callintel` command on a fresh SQLite database: migrate, create a tenant and a working key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import cli
from pipeline.db.session import make_engine, make_session_factory
from pipeline.db.tenants import tenant_for_key
from pipeline.settings import get_settings


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_upgrade_tenant_and_key(sqlite_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0  # idempotent

    created = runner.invoke(cli, ["tenants", "create", "Acme Bank"])
    assert created.exit_code == 0, created.output
    tenant_id = created.output.strip()
    assert tenant_id.startswith("ten_")

    key = runner.invoke(cli, ["keys", "create", "Acme Bank", "--name", "ops"])
    assert key.exit_code == 0, key.output
    secret = key.output.strip()
    engine = make_engine(sqlite_url)
    with make_session_factory(engine)() as session:
        tenant = tenant_for_key(session, secret)
        assert tenant is not None and tenant.id == tenant_id
    engine.dispose()


def test_key_for_an_unknown_tenant_is_an_error(sqlite_url: str) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    result = runner.invoke(cli, ["keys", "create", "nobody"])
    assert result.exit_code != 0
    assert "no tenant" in result.output
