"""Direct uploads end to end: POST /v1/uploads, PUT the bytes to the URL it gives (moto's S3 server
over real HTTP, or this API for a local store), then the upload becomes a job's input."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from api import create_app
from api.auth import require_caller
from api.state import AppState, state
from pipeline.adapters.local_fs import LocalBlobStore
from pipeline.artifacts import upload_key
from pipeline.settings import Settings
from pipeline.uploads import UploadRejected, input_from_upload, upload_signature
from tests.conftest import SAMPLES, TenantKey

WAV = (SAMPLES / "stereo.wav").read_bytes()
SECRET = "direct-upload-test-secret"
Keys = Callable[[str], list[str]]


def local_settings(settings: Settings, root: Path, **changes: Any) -> Settings:
    update = {"storage_url": f"file://{root}", "upload_signing_secret": SecretStr(SECRET)}
    return settings.model_copy(update={**update, **changes})


@pytest.fixture
def local_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "SETTINGS": local_settings(settings, tmp_path / "blobs")})
    yield app
    app.extensions["callintel"].engine.dispose()


@pytest.fixture
def local_client(local_app: Flask) -> FlaskClient:
    return local_app.test_client()


@pytest.fixture
def local_blobs(local_app: Flask) -> LocalBlobStore:
    blobs = local_app.extensions["callintel"].blobs
    assert isinstance(blobs, LocalBlobStore)
    return blobs


def create_upload(client: FlaskClient, tenant: TenantKey, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/uploads", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.json
    created: dict[str, Any] = response.json  # type: ignore[assignment]
    return created


def put_local(client: FlaskClient, upload: dict[str, Any], data: bytes) -> TestResponse:
    """PUT to the URL as a client would: path and query only, and no API key."""
    url = urlsplit(upload["url"])
    return client.put(f"{url.path}?{url.query}", data=data, headers=upload["headers"])


def assert_problem(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["code"] == code


# --- S3 (moto's server): the client PUTs to S3 itself ------------------------------------------


def test_s3_upload_put_to_the_presigned_url_becomes_a_wav_input(
    client: FlaskClient, tenant: TenantKey, app_state: AppState, s3_endpoint: str, stored_keys: Keys
) -> None:
    upload = create_upload(
        client, tenant, filename="call.wav", content_type="audio/wav", bytes=len(WAV)
    )
    assert upload["object"] == "upload" and upload["method"] == "PUT"
    assert upload["id"].startswith("upl_") and upload["url"].startswith(s3_endpoint)
    assert upload["headers"] == {"Content-Type": "audio/wav"}
    expires_at = datetime.fromisoformat(upload["expires_at"])
    assert expires_at > datetime.now(UTC)

    response = requests.put(upload["url"], data=WAV, headers=upload["headers"], timeout=30)
    assert response.status_code == 200, response.text

    assert stored_keys(tenant.tenant_id) == [f"tenants/{tenant.tenant_id}/uploads/{upload['id']}"]
    given = input_from_upload(
        app_state.blobs,
        tenant_id=tenant.tenant_id,
        upload_id=upload["id"],
        max_bytes=app_state.settings.max_upload_bytes,
    )
    assert (given.format, given.bytes, given.content_type) == ("wav", len(WAV), "audio/wav")
    assert given.blob_key == upload_key(tenant.tenant_id, upload["id"])


def test_s3_text_upload_is_refused_when_used(
    client: FlaskClient, tenant: TenantKey, app_state: AppState
) -> None:
    upload = create_upload(client, tenant)  # no hints: application/octet-stream
    assert upload["headers"] == {"Content-Type": "application/octet-stream"}
    text = b"Agent: hello\nCustomer: hi\n" * 10
    assert requests.put(upload["url"], data=text, headers=upload["headers"], timeout=30).ok
    with pytest.raises(UploadRejected) as info:
        input_from_upload(
            app_state.blobs, tenant_id=tenant.tenant_id, upload_id=upload["id"], max_bytes=10**6
        )
    assert info.value.code == "unsupported_media_type"


def test_another_tenants_upload_is_not_found(
    client: FlaskClient, tenant: TenantKey, other_tenant: TenantKey, app_state: AppState
) -> None:
    upload = create_upload(client, tenant, content_type="audio/wav")
    assert requests.put(upload["url"], data=WAV, headers=upload["headers"], timeout=30).ok
    with pytest.raises(UploadRejected) as info:
        input_from_upload(
            app_state.blobs,
            tenant_id=other_tenant.tenant_id,
            upload_id=upload["id"],
            max_bytes=len(WAV),
        )
    assert info.value.code == "upload_not_found"


def test_an_upload_that_was_never_put_is_not_found(
    client: FlaskClient, tenant: TenantKey, app_state: AppState
) -> None:
    upload = create_upload(client, tenant)
    with pytest.raises(UploadRejected) as info:
        input_from_upload(
            app_state.blobs, tenant_id=tenant.tenant_id, upload_id=upload["id"], max_bytes=10**6
        )
    assert info.value.code == "upload_not_found"


# --- asking for an upload ----------------------------------------------------------------------


def test_declared_size_over_the_limit_is_413_naming_it(
    client: FlaskClient, tenant: TenantKey, settings: Settings
) -> None:
    limit = settings.max_upload_bytes
    response = client.post("/v1/uploads", json={"bytes": limit + 1}, headers=tenant.headers)
    assert_problem(response, 413, "too_large")
    assert str(limit) in response.json["detail"]  # type: ignore[index]
    assert (
        client.post("/v1/uploads", json={"bytes": limit}, headers=tenant.headers).status_code == 201
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"content_type": "audio/wav\r\nX-Evil: 1"}, 422, "validation_error"),
        ({"bytes": -1}, 422, "validation_error"),
        ({"size": 10}, 422, "validation_error"),  # unknown fields are refused
    ],
)
def test_invalid_bodies(
    client: FlaskClient, tenant: TenantKey, body: dict[str, Any], status: int, code: str
) -> None:
    assert_problem(client.post("/v1/uploads", json=body, headers=tenant.headers), status, code)


def test_a_body_that_is_not_json_is_415(client: FlaskClient, tenant: TenantKey) -> None:
    response = client.post(
        "/v1/uploads", data=b"hello", content_type="text/plain", headers=tenant.headers
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_no_body_and_no_key(client: FlaskClient, tenant: TenantKey) -> None:
    assert client.post("/v1/uploads", headers=tenant.headers).status_code == 201
    assert_problem(client.post("/v1/uploads"), 401, "unauthenticated")


# --- local store: the API takes the PUT itself -------------------------------------------------


def test_local_upload_put_to_the_api_becomes_a_wav_input(
    local_client: FlaskClient, local_blobs: LocalBlobStore, tenant: TenantKey
) -> None:
    upload = create_upload(local_client, tenant, content_type="audio/wav")
    url = urlsplit(upload["url"])
    assert url.path == f"/v1/uploads/{upload['id']}"
    assert parse_qs(url.query)["tenant"] == [tenant.tenant_id]
    assert upload["url"].startswith("http://localhost/")  # the request's host, no base URL set

    response = put_local(local_client, upload, WAV)

    assert response.status_code == 201, response.json
    assert response.json == {"object": "upload", "id": upload["id"], "bytes": len(WAV)}
    given = input_from_upload(
        local_blobs, tenant_id=tenant.tenant_id, upload_id=upload["id"], max_bytes=len(WAV)
    )
    assert (given.format, given.bytes) == ("wav", len(WAV))
    assert local_blobs.get_bytes(given.blob_key) == WAV


def test_local_text_upload_is_refused_when_used(
    local_client: FlaskClient, local_blobs: LocalBlobStore, tenant: TenantKey
) -> None:
    upload = create_upload(local_client, tenant, content_type="text/plain")
    assert put_local(local_client, upload, b"just words, no audio\n" * 8).status_code == 201
    with pytest.raises(UploadRejected) as info:
        input_from_upload(
            local_blobs, tenant_id=tenant.tenant_id, upload_id=upload["id"], max_bytes=10**6
        )
    assert info.value.code == "unsupported_media_type"


def tamper(upload: dict[str, Any], **query: str) -> dict[str, Any]:
    url = urlsplit(upload["url"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()} | query
    encoded = "&".join(f"{k}={v}" for k, v in params.items())
    return {**upload, "url": f"{url.scheme}://{url.netloc}{url.path}?{encoded}"}


@pytest.mark.parametrize(
    "change",
    ["signature", "tenant", "expires", "missing", "other-upload"],
)
def test_a_wrong_signature_is_403_and_stores_nothing(
    local_client: FlaskClient,
    local_blobs: LocalBlobStore,
    tenant: TenantKey,
    other_tenant: TenantKey,
    change: str,
) -> None:
    upload = create_upload(local_client, tenant)
    query = parse_qs(urlsplit(upload["url"]).query)
    signature, expires = query["signature"][0], query["expires"][0]
    altered = {
        "signature": lambda: tamper(upload, signature=signature[::-1]),
        "tenant": lambda: tamper(upload, tenant=other_tenant.tenant_id),
        "expires": lambda: tamper(upload, expires=str(int(expires) + 3600)),
        "missing": lambda: tamper(upload, signature=""),
        "other-upload": lambda: {
            **upload,
            "url": upload["url"].replace(upload["id"], create_upload(local_client, tenant)["id"]),
        },
    }[change]()

    assert_problem(put_local(local_client, altered, WAV), 403, "invalid_signature")
    assert list(local_blobs.root.rglob("uploads/*")) == []


def test_an_expired_url_is_403(
    local_client: FlaskClient, local_blobs: LocalBlobStore, tenant: TenantKey
) -> None:
    upload = create_upload(local_client, tenant)
    expired = int(time.time()) - 1
    signature = upload_signature(
        SECRET.encode(), tenant_id=tenant.tenant_id, upload_id=upload["id"], expires=expired
    )
    stale = tamper(upload, expires=str(expired), signature=signature)
    assert_problem(put_local(local_client, stale, WAV), 403, "invalid_signature")
    assert list(local_blobs.root.rglob("uploads/*")) == []


@pytest.fixture
def small_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """A local-store app whose upload limit is one byte short of the sample recording."""
    small = local_settings(settings, tmp_path / "small", max_upload_bytes=len(WAV) - 1)
    app = create_app({"TESTING": True, "SETTINGS": small})
    yield app
    app.extensions["callintel"].engine.dispose()


def stream_put(client: FlaskClient, upload: dict[str, Any], data: bytes) -> TestResponse:
    """A PUT without Content-Length (chunked, as a proxy forwards it): only the stream tells."""
    url = urlsplit(upload["url"])
    builder = EnvironBuilder(path=url.path, query_string=url.query, method="PUT")
    environ = builder.get_environ()
    builder.close()
    environ.pop("CONTENT_LENGTH", None)
    environ.update(HTTP_TRANSFER_ENCODING="chunked", CONTENT_TYPE="application/octet-stream")
    environ["wsgi.input"] = io.BytesIO(data)
    environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


@pytest.mark.parametrize("send", [put_local, stream_put], ids=["content-length", "chunked"])
def test_over_the_limit_is_413_and_nothing_is_kept(
    small_app: Flask,
    tenant: TenantKey,
    send: Callable[[FlaskClient, dict[str, Any], bytes], TestResponse],
) -> None:
    client, blobs = small_app.test_client(), small_app.extensions["callintel"].blobs
    upload = create_upload(client, tenant)
    assert send(client, upload, WAV[:-1]).status_code == 201  # at the limit: kept
    key = upload_key(tenant.tenant_id, upload["id"])
    assert blobs.exists(key)

    response = send(client, upload, WAV)  # one byte over, to the same URL

    assert_problem(response, 413, "too_large")
    assert str(len(WAV) - 1) in response.json["detail"]  # type: ignore[index]
    assert not blobs.exists(key)
    assert [p for p in blobs.root.rglob("*") if p.is_file() and ".health" not in p.parts] == []


def test_the_public_base_url_is_used_when_set(
    settings: Settings, tmp_path: Path, tenant: TenantKey
) -> None:
    public = local_settings(settings, tmp_path / "b", public_base_url="https://api.example.com/")
    app = create_app({"TESTING": True, "SETTINGS": public})
    try:
        upload = create_upload(app.test_client(), tenant)
    finally:
        app.extensions["callintel"].engine.dispose()
    assert upload["url"].startswith(f"https://api.example.com/v1/uploads/{upload['id']}?")


def test_local_store_without_a_signing_secret_is_503(
    settings: Settings, tmp_path: Path, tenant: TenantKey
) -> None:
    secrets = ["upload_signing_secret", "provider_webhook_secret", "admin_api_key"]
    bare = local_settings(
        settings,
        tmp_path / "b",
        **dict.fromkeys([*secrets, "assemblyai_api_key", "gemini_api_key"]),
    )
    app = create_app({"TESTING": True, "SETTINGS": bare})
    try:
        response = app.test_client().post("/v1/uploads", headers=tenant.headers)
        assert_problem(response, 503, "uploads_not_configured")
    finally:
        app.extensions["callintel"].engine.dispose()


# --- rejections seen by a client ---------------------------------------------------------------


def test_a_view_raising_upload_rejected_answers_with_its_problem(
    local_app: Flask, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    """Any view (the batch API) that adopts an upload gets the rejection as a problem response."""

    def adopt(upload_id: str) -> dict[str, Any]:
        app = state()
        given = input_from_upload(
            app.blobs,
            tenant_id=require_caller().tenant_id,
            upload_id=upload_id,
            max_bytes=app.settings.max_upload_bytes,
        )
        return given.model_dump()

    local_app.add_url_rule("/test-adopt/<upload_id>", view_func=adopt, methods=["POST"])
    client = local_app.test_client()
    upload = create_upload(client, tenant)
    assert put_local(client, upload, b"plain text\n" * 10).status_code == 201

    mine = client.post(f"/test-adopt/{upload['id']}", headers=tenant.headers)
    theirs = client.post(f"/test-adopt/{upload['id']}", headers=other_tenant.headers)

    assert_problem(mine, 415, "unsupported_media_type")
    assert_problem(theirs, 404, "upload_not_found")
