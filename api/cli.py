"""The `callintel` command: database, tenants and keys, the embedded stack, a worker, submissions."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from api.bulk_cli import bulk
from api.config_text import Format, InvalidConfig, config_yaml, parse_config
from pipeline.db.migrate import upgrade
from pipeline.db.models import ApiKey, Tenant
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenant_config import VersionedConfig, list_versions, load_config, put_config
from pipeline.db.tenants import (
    create_key,
    create_tenant,
    find_tenant,
    list_keys,
    list_tenants,
    revoke_key,
    rotate_key,
)
from pipeline.errors import PermanentError
from pipeline.settings import get_settings

QUEUES = "transcribe,asr-local,analyze,default,webhooks,maintenance"


@click.group()
def cli() -> None:
    """Callintel: conversation intelligence for call centers."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (idempotent)."""
    upgrade(get_settings().database_url)
    click.echo("database is up to date")


@cli.group()
def tenants() -> None:
    """Tenants (clients)."""


@tenants.command("create")
@click.argument("name")
def tenants_create(name: str) -> None:
    """Create a tenant and print its id."""
    with transaction(_sessions()) as session:
        tenant = create_tenant(session, name=name)
        click.echo(tenant.id)


@tenants.command("list")
def tenants_list() -> None:
    """Every tenant: id, name, configuration version."""
    with _sessions()() as session:
        for tenant in list_tenants(session):
            click.echo(f"{tenant.id}\t{tenant.name}\tv{tenant.config_version}")


@tenants.command("show")
@click.argument("tenant")
def tenants_show(tenant: str) -> None:
    """TENANT (id or name) as JSON: its record, keys (never their secrets) and configuration."""
    with _sessions()() as session:
        found = _tenant(session, tenant)
        loaded = _load(session, found.id)
        shown = {
            "id": found.id,
            "name": found.name,
            "created_at": found.created_at.isoformat(),
            "config_version": loaded.version,
            "keys": [_key_line(k) for k in list_keys(session, found.id)],
            "config": loaded.config.model_dump(mode="json"),
        }
    click.echo(json.dumps(shown, indent=2))


@tenants.group("config")
def tenants_config() -> None:
    """A tenant's versioned configuration (YAML or JSON files)."""


@tenants_config.command("export")
@click.argument("tenant")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
def config_export(tenant: str, output: str | None) -> None:
    """Write TENANT's current configuration as YAML."""
    with _sessions()() as session:
        loaded = _load(session, _tenant(session, tenant).id)
    text = f"# configuration version {loaded.version}\n" + config_yaml(loaded.config)
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")


@tenants_config.command("import")
@click.argument("tenant")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--comment", default="", help="Why this change (kept in the history).")
def config_import(tenant: str, path: str, comment: str) -> None:
    """Store PATH (YAML, or JSON when it ends in .json) as TENANT's new version; print its number."""
    fmt: Format = "json" if path.lower().endswith(".json") else "yaml"
    try:
        config = parse_config(Path(path).read_bytes(), fmt=fmt)
    except InvalidConfig as exc:
        lines = [f"  {e['loc'] or '(document)'}: {e['msg']}" for e in exc.errors]
        raise click.ClickException("\n".join([exc.detail, *lines])) from exc
    with transaction(_sessions()) as session:
        found = _tenant(session, tenant)
        version = put_config(session, found.id, config, author="cli", comment=comment)
    click.echo(version)


@tenants_config.command("versions")
@click.argument("tenant")
def config_versions(tenant: str) -> None:
    """TENANT's configuration history: version, time, author, comment."""
    with _sessions()() as session:
        history = list_versions(session, _tenant(session, tenant).id)
    for entry in history:
        when = entry.created_at.isoformat(timespec="seconds")
        click.echo(f"{entry.version}\t{when}\t{entry.author}\t{entry.comment}")


@cli.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.argument("tenant")
@click.option("--name", default="", help="A label for the key.")
def keys_create(tenant: str, name: str) -> None:
    """Create an API key for TENANT (id or name). The key is shown once."""
    with transaction(_sessions()) as session:
        key = create_key(session, tenant_id=_tenant(session, tenant).id, name=name)
    click.echo(key.secret)


@keys.command("list")
@click.argument("tenant")
def keys_list(tenant: str) -> None:
    """TENANT's keys: id, name, prefix, created, last used, expires, revoked (never the secret)."""
    with _sessions()() as session:
        rows = list_keys(session, _tenant(session, tenant).id)
        for key in rows:
            click.echo("\t".join(str(v) for v in _key_line(key).values()))


@keys.command("rotate")
@click.argument("tenant")
@click.argument("key_id")
@click.option("--overlap-hours", default=24.0, show_default=True, help="Old key's grace period.")
def keys_rotate(tenant: str, key_id: str, overlap_hours: float) -> None:
    """Replace KEY_ID with a new key (printed once); the old one works for the overlap."""
    with transaction(_sessions()) as session:
        found = _tenant(session, tenant)
        overlap = timedelta(hours=overlap_hours)
        rotated = rotate_key(session, tenant_id=found.id, key_id=key_id, overlap=overlap)
        if rotated is None:
            raise click.ClickException(f"no active key {key_id!r} for tenant {tenant!r}")
        ends = _when(rotated.previous.expires_at)
    click.echo(rotated.new.secret)
    click.echo(f"{key_id} keeps working until {ends}", err=True)


@keys.command("revoke")
@click.argument("tenant")
@click.argument("key_id")
def keys_revoke(tenant: str, key_id: str) -> None:
    """Revoke KEY_ID of TENANT at once."""
    with transaction(_sessions()) as session:
        found = _tenant(session, tenant)
        if revoke_key(session, tenant_id=found.id, key_id=key_id) is None:
            raise click.ClickException(f"no key {key_id!r} for tenant {tenant!r}")
    click.echo(f"{key_id} revoked")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--flower-port", default=5555, show_default=True)
@click.option("--concurrency", default=2, show_default=True, help="Worker processes.")
def run(host: str, port: int, flower_port: int, concurrency: int) -> None:
    """Run the whole stack on embedded defaults: API, worker, beat, Flower (no keys, no servers)."""
    from api.devstack import DevStack

    DevStack(host=host, port=port, flower_port=flower_port, concurrency=concurrency).run()


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", default=QUEUES, show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    args = [sys.executable, "-m", "celery", "-A", "workers.app:app", "worker", "-Q", queues]
    os.execv(sys.executable, [*args, *celery_args])  # noqa: S606 - replace this process


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--key", envvar="CALLINTEL_API_KEY", required=True, help="or CALLINTEL_API_KEY")
@click.option("--external-id", default=None, help="Your id for the call (e.g. the CRM's).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the result.")
def submit(path: str, url: str, key: str, external_id: str | None, wait: bool) -> None:
    """Submit a recording, a .json body or a .txt transcript; by default wait for the result."""
    from api.client import submit_file

    click.echo(submit_file(path, base_url=url, api_key=key, wait=wait, external_id=external_id))


cli.add_command(bulk)


def _sessions() -> sessionmaker[Session]:
    # One-shot commands keep no pool: each connection closes with its session.
    return make_session_factory(make_engine(get_settings().database_url, poolclass=NullPool))


def _tenant(session: Session, ref: str) -> Tenant:
    found = find_tenant(session, ref)
    if found is None:
        raise click.ClickException(f"no tenant {ref!r}")
    return found


def _load(session: Session, tenant_id: str) -> VersionedConfig:
    try:
        return load_config(session, tenant_id)
    except PermanentError as exc:
        raise click.ClickException(exc.message) from exc


def _key_line(key: ApiKey) -> dict[str, str]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": _when(key.created_at),
        "last_used_at": _when(key.last_used_at),
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
    }


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")
