"""The `callintel` command on a fresh PostgreSQL database: migrate, create a tenant and a working key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api.cli import cli
from pipeline.db.session import make_engine, make_session_factory
from pipeline.db.tenants import tenant_for_key


@pytest.fixture
def db_url(empty_database_url: str) -> str:
    return empty_database_url


def test_upgrade_tenant_and_key(db_url: str) -> None:
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
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        tenant = tenant_for_key(session, secret)
        assert tenant is not None and tenant.id == tenant_id
    engine.dispose()


def test_key_for_an_unknown_tenant_is_an_error(db_url: str) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    result = runner.invoke(cli, ["keys", "create", "nobody"])
    assert result.exit_code != 0
    assert "no tenant" in result.output
