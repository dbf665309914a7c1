"""The `callintel` command: database, tenants and keys, the embedded stack, a worker, submissions."""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenants import create_key, create_tenant, find_tenant
from pipeline.settings import get_settings

QUEUES = "transcribe,asr-local,analyze,default,webhooks"


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


@cli.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.argument("tenant")
@click.option("--name", default="", help="A label for the key.")
def keys_create(tenant: str, name: str) -> None:
    """Create an API key for TENANT (id or name). The key is shown once."""
    with transaction(_sessions()) as session:
        found = find_tenant(session, tenant)
        if found is None:
            raise click.ClickException(f"no tenant {tenant!r}")
        key = create_key(session, tenant_id=found.id, name=name)
    click.echo(key.secret)


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


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))
