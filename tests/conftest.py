"""Fixtures on real services: PostgreSQL, Redis, moto's S3 server (real HTTP) and worker processes.

The broker URL must be known before `workers` is imported (Celery reads its config once), so it is
set here at import time; everything else is handed to the app and the workers explicitly.
"""

from __future__ import annotations

import atexit
import json
import logging
import os

from tests.support.services import claim_redis_db, ensure_test_services, release_redis_db

# Test modules import helpers from this file, which then runs a second time under another module
# name: claim once per process, or the second run would switch REDIS_URL under Celery's feet.
if "CALLINTEL_TEST_REDIS_URL" not in os.environ:
    ensure_test_services()  # the machine's PostgreSQL and Redis, or embedded ones started here
    os.environ["CALLINTEL_TEST_REDIS_URL"] = claim_redis_db()
    atexit.register(release_redis_db, os.environ["CALLINTEL_TEST_REDIS_URL"])
os.environ["REDIS_URL"] = os.environ["CALLINTEL_TEST_REDIS_URL"]
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api import create_app
from pipeline.db.migrate import upgrade
from pipeline.db.session import make_engine, make_session_factory, transaction
from pipeline.db.tenants import create_key, create_tenant
from pipeline.settings import Settings
from tests.support.services import free_port, postgres_database

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BUCKET = "callintel-test"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ["REDIS_URL"]
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def settings(pg_url: str, redis_url: str, s3_endpoint: str) -> Settings:
    return Settings(
        database_url=pg_url,
        redis_url=redis_url,
        storage_url=f"s3://{BUCKET}/blobs",
        s3_endpoint_url=s3_endpoint,
        max_upload_bytes=8 * 1024 * 1024,
        stage_soft_limit_s=120,
        stage_hard_limit_s=150,
        visibility_timeout_s=300,
        # Tests share this database and leave released rescores nobody runs: only the per-tenant
        # cap (4) applies here; tests/unit/pipeline/db/test_rescore_backlog.py tests the global one.
        rescore_max_in_flight=10_000,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see the same configuration."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            env[name.upper()] = value.get_secret_value()
        elif isinstance(value, list | dict):
            env[name.upper()] = json.dumps(value)
        elif value is not None:
            env[name.upper()] = str(value)
    return env


@pytest.fixture(scope="session")
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SETTINGS": settings})
    yield app
    app.extensions["callintel"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass(frozen=True)
class TenantKey:
    tenant_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_tenant(sessions: sessionmaker[Session], name: str) -> TenantKey:
    with transaction(sessions) as session:
        tenant = create_tenant(session, name=name)
        key = create_key(session, tenant_id=tenant.id)
    return TenantKey(tenant.id, key.secret)


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> TenantKey:
    return make_tenant(sessions, "acme")


@pytest.fixture
def other_tenant(sessions: sessionmaker[Session]) -> TenantKey:
    return make_tenant(sessions, "globex")
