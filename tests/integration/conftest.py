"""A real Celery worker process on the session's Redis, PostgreSQL and moto S3 server."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from pipeline.settings import Settings
from tests.conftest import TenantKey, settings_env
from tests.support.services import ALL_QUEUES, celery_worker


@pytest.fixture(scope="session")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker") / "worker.log"


@pytest.fixture(scope="module")  # stopped with its module: later tests expect no consumer
def worker(settings: Settings, worker_log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with celery_worker(settings_env(settings), log=worker_log, queues=ALL_QUEUES) as proc:
        yield proc


Poll = Callable[..., dict[str, Any]]


@pytest.fixture
def poll(client: FlaskClient) -> Poll:
    """Poll a job's status document the way a client would, until it is terminal."""

    def _poll(job_id: str, headers: dict[str, str], *, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = client.get(f"/v1/jobs/{job_id}", headers=headers)
            assert response.status_code == 200, response.json
            body: dict[str, Any] = response.json  # type: ignore[assignment]
            if body["status"] in ("completed", "failed"):
                return body
            assert response.headers.get("Retry-After")
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not terminal after {timeout} s: {body}")

    return _poll


def post_audio(
    client: FlaskClient, tenant: TenantKey, data: bytes, name: str, **fields: str
) -> TestResponse:
    # Encoded here: werkzeug's test client spools big bodies to a temp file it never closes.
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), name), **fields})
    content_type = f"multipart/form-data; boundary={boundary}"
    return client.post("/v1/jobs", data=body, headers=tenant.headers, content_type=content_type)


def sample(name: str) -> Path:
    return Path(__file__).resolve().parents[2] / "samples" / name
