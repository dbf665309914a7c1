"""`callintel tenants …` and `callintel keys …` on a fresh PostgreSQL database: list, show, config
export/import/versions (YAML and JSON) and the key lifecycle (list, rotate, revoke)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from api.cli import cli
from pipeline.db.session import make_engine, make_session_factory
from pipeline.db.tenants import tenant_for_key

CONFIG = """\
context:
  business_description: Debt collection agency.
  risk_triggers: [bankruptcy]
packs: [customer_service]
defaults: {language: en}
"""


@pytest.fixture
def db_url(empty_database_url: str) -> str:
    """A fresh database, migrated by the CLI, that DATABASE_URL names."""
    assert CliRunner().invoke(cli, ["db", "upgrade"]).exit_code == 0
    return empty_database_url


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def key_works(url: str, secret: str) -> bool:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return tenant_for_key(session, secret) is not None
    finally:
        engine.dispose()


def test_list_and_show(db_url: str) -> None:
    tenant_id = run("tenants", "create", "Acme").output.strip()
    run("tenants", "create", "Globex")
    secret = run("keys", "create", "Acme", "--name", "ops").output.strip()
    lines = run("tenants", "list").output.splitlines()
    assert [line.split("\t")[1:] for line in lines] == [["Acme", "v0"], ["Globex", "v0"]]

    shown = json.loads(run("tenants", "show", tenant_id).output)
    assert (shown["name"], shown["config_version"]) == ("Acme", 0)
    assert [k["name"] for k in shown["keys"]] == ["ops"]
    assert secret not in json.dumps(shown)
    missing = CliRunner().invoke(cli, ["tenants", "show", "nobody"])
    assert missing.exit_code != 0 and "no tenant" in missing.output


def test_config_import_export_round_trip_and_versions(db_url: str, tmp_path: Path) -> None:
    run("tenants", "create", "Acme")
    source = tmp_path / "acme.yaml"
    source.write_text(CONFIG)
    assert run("tenants", "config", "import", "Acme", str(source)).output.strip() == "1"

    exported = tmp_path / "exported.yaml"
    run("tenants", "config", "export", "Acme", "-o", str(exported))
    body = yaml.safe_load(exported.read_text())
    assert body["context"]["risk_triggers"] == ["bankruptcy"]
    assert body["packs"] == ["customer_service"]
    assert yaml.safe_load(run("tenants", "config", "export", "Acme").output) == body  # stdout

    again = run("tenants", "config", "import", "Acme", str(exported), "--comment", "round trip")
    assert again.output.strip() == "2"
    as_json = tmp_path / "acme.json"
    as_json.write_text(json.dumps({**body, "dedupe": "external_id"}))
    assert run("tenants", "config", "import", "Acme", str(as_json)).output.strip() == "3"

    history = [
        line.split("\t")
        for line in run("tenants", "config", "versions", "Acme").output.splitlines()
    ]
    assert [(h[0], h[2], h[3]) for h in history] == [
        ("1", "cli", ""),
        ("2", "cli", "round trip"),
        ("3", "cli", ""),
    ]
    assert (
        yaml.safe_load(run("tenants", "config", "export", "Acme").output)["dedupe"] == "external_id"
    )


def test_an_invalid_file_is_refused_with_its_locations(db_url: str, tmp_path: Path) -> None:
    run("tenants", "create", "Acme")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dedupe: always\ncontext: {risk_trigers: [x]}\n")
    result = CliRunner().invoke(cli, ["tenants", "config", "import", "Acme", str(bad)])
    assert result.exit_code != 0
    assert "dedupe:" in result.output and "context.risk_trigers:" in result.output
    assert run("tenants", "config", "versions", "Acme").output == ""


def test_keys_list_rotate_revoke(db_url: str) -> None:
    run("tenants", "create", "Acme")
    old = run("keys", "create", "Acme", "--name", "ops").output.strip()
    (line,) = run("keys", "list", "Acme").output.splitlines()
    key_id, name, prefix = line.split("\t")[:3]
    assert (name, old.startswith(prefix)) == ("ops", True)
    assert old not in line

    new = run("keys", "rotate", "Acme", key_id).stdout.strip()
    assert new != old and key_works(db_url, new) and key_works(db_url, old)
    expires = {
        row.split("\t")[0]: row.split("\t")[5]
        for row in run("keys", "list", "Acme").output.splitlines()
    }
    assert expires[key_id] != "-"

    new_id = next(k for k in expires if k != key_id)
    run("keys", "revoke", "Acme", new_id)
    assert not key_works(db_url, new)
    assert key_works(db_url, old)  # still inside its overlap
    unknown = CliRunner().invoke(cli, ["keys", "revoke", "Acme", "key_nope"])
    assert unknown.exit_code != 0 and "no key" in unknown.output


def test_rotation_with_no_overlap_stops_the_old_key(db_url: str) -> None:
    run("tenants", "create", "Acme")
    old = run("keys", "create", "Acme").output.strip()
    key_id = run("keys", "list", "Acme").output.split("\t")[0]
    run("keys", "rotate", "Acme", key_id, "--overlap-hours", "0")
    assert not key_works(db_url, old)


def test_the_readme_example_config_imports(db_url: str, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Tenant configuration and keys", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "acme.yaml").write_text(example)
    run("tenants", "create", "Acme Bank")
    assert (
        run("tenants", "config", "import", "Acme Bank", str(tmp_path / "acme.yaml")).output == "1\n"
    )
    shown = json.loads(run("tenants", "show", "Acme Bank").output)["config"]
    assert shown["packs"] == ["customer_service"]
    assert [i["name"] for i in shown["context"]["intents"]] == ["card_blocked", "loan_payoff"]
    assert shown["context"]["risk_triggers"] and shown["context"]["policies"]
    assert shown["defaults"]["language"] == "en"
