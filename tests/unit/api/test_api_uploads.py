"""`POST /v1/jobs` with a recording: multipart streaming into storage, sniffing, form fields, limits.

Every refusal is checked where it matters: no job row and no object (nor unfinished multipart
upload) left in the bucket for the tenant.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import EnvironBuilder, TestResponse, encode_multipart
from werkzeug.wrappers import Request

from api import create_app
from api.state import AppState
from pipeline.db.models import Job
from pipeline.settings import Settings
from schemas.api import JobView
from tests.conftest import SAMPLES, TenantKey
from tests.unit.api.conftest import PostAudio

MIB = 1024 * 1024
Keys = Callable[[str], list[str]]
Rows = Callable[[str], list[Job]]
BOUNDARY = "callintel-test-boundary-7d1f"
WAV_HEAD = (SAMPLES / "stereo.wav").read_bytes()[:44]


def wav_of_size(size: int) -> bytes:
    """A file that sniffs as WAV (a real header) padded with silence to exactly `size` bytes."""
    return WAV_HEAD + bytes(size - len(WAV_HEAD))


def assert_refused(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code
    assert response.json["status"] == status


def assert_nothing_left(tenant: TenantKey, job_rows: Rows, stored_keys: Keys) -> None:
    assert job_rows(tenant.tenant_id) == []
    assert stored_keys(tenant.tenant_id) == []


# --- accepted recordings -----------------------------------------------------------------------


def test_stereo_wav_is_stored_byte_identical(
    post_audio: PostAudio,
    tenant: TenantKey,
    app_state: AppState,
    sessions: sessionmaker[Session],
    stored_keys: Keys,
) -> None:
    data = (SAMPLES / "stereo.wav").read_bytes()
    response = post_audio(tenant, data, "stereo.wav")
    assert response.status_code == 202, response.json
    view = JobView.model_validate(response.json)
    assert response.headers["Location"] == f"/v1/jobs/{view.id}"
    assert view.status == "queued" and view.input_kind == "audio"
    assert [s.state for s in view.steps] == ["pending"] * 5

    with sessions() as session:
        job = session.get(Job, view.id)
        assert job is not None
        stored_input = job.envelope["input"]
    key = f"tenants/{tenant.tenant_id}/jobs/{view.id}/input.wav"
    assert stored_input == {
        "kind": "audio",
        "blob_key": key,
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "audio/wav",
        "bytes": len(data),
        "format": "wav",
        "channels": 2,  # read from the WAV header at intake
        "duration_ms": None,
    }
    assert app_state.blobs.get_bytes(key) == data
    assert stored_keys(tenant.tenant_id) == [key]


@pytest.mark.parametrize("placement", ["before", "after"])
def test_form_fields_are_reflected(
    post_audio: PostAudio,
    client: FlaskClient,
    tenant: TenantKey,
    sessions: sessionmaker[Session],
    placement: str,
) -> None:
    fields = {
        "external_id": "crm-42",
        "call_type": "billing",
        "agent_id": "agent-9",
        "language": "en",
        "metadata": json.dumps({"queue": "vip", "direction": "inbound", "n": 3}),
        "channel_map": "customer,agent",
    }
    response = post_audio(tenant, (SAMPLES / "stereo.wav").read_bytes(), **{placement: fields})
    assert response.status_code == 202, response.json

    status = client.get(response.headers["Location"], headers=tenant.headers).json
    assert status["external_id"] == "crm-42"
    assert status["call_type"] == "billing"
    assert status["metadata"] == {
        "queue": "vip",
        "direction": "inbound",
        "n": 3,
        "agent_id": "agent-9",
    }
    with sessions() as session:
        job = session.get(Job, status["id"])
        assert job is not None
        options = job.envelope["options"]
    assert options == {
        "language": "en",
        "channel_map": {"0": "customer", "1": "agent"},
        "call_type": "billing",
        "transcriber": "local",  # providers are pinned at intake
        "analyzer": "local",
        "config_version": 0,  # the tenant's configuration version at intake
        "analysis_mode": None,  # one-off jobs are never analyzed through a batch API
    }


def test_channel_map_as_json_and_the_audio_field_name(
    post_audio: PostAudio, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    data = (SAMPLES / "mono.wav").read_bytes()
    response = post_audio(tenant, data, field="audio", before={"channel_map": '{"0": "agent"}'})
    assert response.status_code == 202, response.json
    with sessions() as session:
        job = session.get(Job, response.json["id"])
        assert job is not None
        assert job.envelope["options"]["channel_map"] == {"0": "agent"}
        assert job.envelope["input"]["bytes"] == len(data)


# --- refused recordings ------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(50)
DISGUISED = {
    "text-named-wav": (b"this is not audio at all " * 40, "call.wav"),
    "png-named-wav": (PNG, "call.wav"),
    "pdf-named-mp3": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 4, "call.mp3"),
    "empty-file": (b"", "call.wav"),
    "riff-avi": (b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(100), "call.wav"),
    "zip-named-m4a": (b"PK\x03\x04\x14\x00\x00\x00" + bytes(100), "call.m4a"),
    "html": (b"<!doctype html><html><body>hi</body></html>", "call.ogg"),
}


@pytest.mark.parametrize(("data", "name"), DISGUISED.values(), ids=DISGUISED.keys())
def test_disguised_files_are_415(
    post_audio: PostAudio,
    tenant: TenantKey,
    data: bytes,
    name: str,
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    response = post_audio(tenant, data, name, after={"external_id": "x"})
    assert_refused(response, 415, "unsupported_media_type")
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_missing_file_part_is_422(
    client: FlaskClient, post_audio: PostAudio, tenant: TenantKey, job_rows: Rows
) -> None:
    wav = (SAMPLES / "mono.wav").read_bytes()
    boundary, body = encode_multipart({"external_id": "x", "file": "not a file part"})
    only_fields = client.post(
        "/v1/jobs",
        headers=tenant.headers,
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert_refused(only_fields, 422, "missing_file")
    assert_refused(post_audio(tenant, wav, field="recording"), 422, "missing_file")
    assert job_rows(tenant.tenant_id) == []


INVALID_FIELDS = {
    "metadata-not-json": {"metadata": "{not json"},
    "metadata-array": {"metadata": "[1, 2]"},
    "channel-map-bad-role": {"channel_map": "customer,supervisor"},
    "channel-map-bad-json": {"channel_map": "{0: agent}"},
    "unknown-field": {"externalid": "typo"},
    "external-id-too-long": {"external_id": "x" * 201},
}


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize("fields", INVALID_FIELDS.values(), ids=INVALID_FIELDS.keys())
def test_invalid_form_fields_are_422_and_store_nothing(
    post_audio: PostAudio,
    tenant: TenantKey,
    fields: dict[str, str],
    placement: str,
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    wav = (SAMPLES / "mono.wav").read_bytes()
    response = post_audio(tenant, wav, **{placement: fields})
    assert_refused(response, 422, "validation_error")
    assert_nothing_left(tenant, job_rows, stored_keys)


BAD_CHANNEL_MAPS = {
    "negative": ("stereo.wav", '{"-1": "agent", "0": "customer"}', "channel -1 is negative"),
    "role-twice": ("stereo.wav", "agent,agent", "role 'agent' is named twice (channels 0 and 1)"),
    "role-twice-json": ("stereo.wav", '{"0": "customer", "1": "customer"}', "named twice"),
    "beyond-stereo": (
        "stereo.wav",
        '{"0": "agent", "5": "customer"}',
        "channel_map names channel 5, but the recording has only channels 0-1",
    ),
    "beyond-mono": (
        "mono.wav",
        "agent,customer",
        "channel_map names channel 1, but the recording has only channel 0",
    ),
}


@pytest.mark.parametrize(
    ("sample", "value", "problem"), BAD_CHANNEL_MAPS.values(), ids=BAD_CHANNEL_MAPS
)
def test_a_bad_channel_map_is_422_naming_the_problem(
    post_audio: PostAudio,
    tenant: TenantKey,
    job_rows: Rows,
    stored_keys: Keys,
    sample: str,
    value: str,
    problem: str,
) -> None:
    response = post_audio(tenant, (SAMPLES / sample).read_bytes(), after={"channel_map": value})
    assert_refused(response, 422, "validation_error")
    [error] = response.json["errors"]
    assert error["loc"] == "channel_map"
    assert problem in error["msg"]
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_a_channel_map_within_the_recording_is_accepted(
    post_audio: PostAudio, tenant: TenantKey, sessions: sessionmaker[Session]
) -> None:
    """'unknown' may mark several channels; only agent and customer must be unique."""
    data = (SAMPLES / "stereo.wav").read_bytes()
    response = post_audio(tenant, data, after={"channel_map": "unknown,unknown"})
    assert response.status_code == 202, response.json
    with sessions() as session:
        job = session.get(Job, response.json["id"])
        assert job is not None
        assert job.envelope["options"]["channel_map"] == {"0": "unknown", "1": "unknown"}


def test_multipart_without_a_boundary_is_400(client: FlaskClient, tenant: TenantKey) -> None:
    response = client.post(
        "/v1/jobs", headers=tenant.headers, data=b"--x\r\n", content_type="multipart/form-data"
    )
    assert_refused(response, 400, "invalid_request")


def file_part(data: bytes, *, name: str = "file", filename: str = "call.wav") -> bytes:
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name={json.dumps(name)}; "
        f"filename={json.dumps(filename)}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode() + data


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def test_a_truncated_body_is_400_and_stores_nothing(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    body = file_part((SAMPLES / "stereo.wav").read_bytes())[: MIB + 1234]  # no closing boundary
    response = client.post("/v1/jobs", headers=tenant.headers, data=body, content_type=MULTIPART)
    assert_refused(response, 400, "invalid_request")
    assert_nothing_left(tenant, job_rows, stored_keys)


# --- size limits -------------------------------------------------------------------------------


class CountingSource(io.RawIOBase):
    """A client's body as the server reads it: generated on the fly, counting what was read."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts
        self._pending = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._parts, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_read += n
        return n


def wav_body(file_size: int) -> Iterator[bytes]:
    """A multipart body holding one WAV file of `file_size` bytes, produced in 256 KiB pieces."""
    yield file_part(WAV_HEAD)
    left = file_size - len(WAV_HEAD)
    while left > 0:
        piece = min(left, 256 * 1024)
        yield bytes(piece)
        left -= piece
    yield TAIL


class SeekableCountingBody(io.BytesIO):
    """A body with a known length (the test client measures it by seeking) that counts reads."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.bytes_read += n
        return n

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.bytes_read += len(data)
        return data


def post_with_length(
    client: FlaskClient, tenant: TenantKey, body: bytes
) -> tuple[TestResponse, int]:
    source = SeekableCountingBody(body)
    response = client.post(
        "/v1/jobs", headers=tenant.headers, input_stream=source, content_type=MULTIPART
    )
    assert response.request.content_length == len(body)
    return response, source.bytes_read


def post_streaming(
    client: FlaskClient, tenant: TenantKey, source: CountingSource, *, terminated: bool
) -> TestResponse:
    """POST a chunked body: no Content-Length. `terminated` says the server (gunicorn, Werkzeug's
    dev server) delimits the body itself, as real servers do for chunked requests."""
    builder = EnvironBuilder(path="/v1/jobs", method="POST", headers=tenant.headers)
    environ = builder.get_environ()
    builder.close()
    environ.pop("CONTENT_LENGTH", None)
    environ.update(CONTENT_TYPE=MULTIPART, HTTP_TRANSFER_ENCODING="chunked")
    environ["wsgi.input"] = source
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


def test_over_the_limit_with_content_length_is_refused_before_reading(
    client: FlaskClient, tenant: TenantKey, settings: Settings, job_rows: Rows, stored_keys: Keys
) -> None:
    assert settings.max_upload_bytes == 8 * MIB
    body = b"".join(wav_body(9 * MIB))
    response, bytes_read = post_with_length(client, tenant, body)
    assert_refused(response, 413, "too_large")
    assert bytes_read == 0
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_one_byte_over_with_content_length_is_stopped_while_streaming(
    client: FlaskClient, tenant: TenantKey, settings: Settings, job_rows: Rows, stored_keys: Keys
) -> None:
    """Within the multipart slack the length check passes; the streaming limit must still hold."""
    body = b"".join(wav_body(settings.max_upload_bytes + 1))
    response, _ = post_with_length(client, tenant, body)
    assert_refused(response, 413, "too_large")
    assert response.json["detail"] == "an upload is limited to 8388608 bytes (8 MiB)"
    assert_nothing_left(tenant, job_rows, stored_keys)


@pytest.mark.parametrize("placement", ["before", "after"])
@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotency-key"])
def test_an_oversized_form_field_is_413_naming_the_field_limit(
    client: FlaskClient,
    tenant: TenantKey,
    settings: Settings,
    job_rows: Rows,
    stored_keys: Keys,
    placement: str,
    idempotent: bool,
) -> None:
    """A 300 KB field hits the form-field limit, not the upload limit (the Idempotency-Key
    fingerprint walks the body first, with the same limits)."""
    assert settings.max_form_field_bytes == 256 * 1024
    wav = FileStorage(io.BytesIO((SAMPLES / "mono.wav").read_bytes()), "call.wav")
    field = ("metadata", json.dumps({"note": "x" * 300_000}))
    parts = [field, ("file", wav)] if placement == "before" else [("file", wav), field]
    boundary, body = encode_multipart(MultiDict(parts))
    headers = {**tenant.headers, **({"Idempotency-Key": "big-field"} if idempotent else {})}
    response = client.post(
        "/v1/jobs",
        data=body,
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert_refused(response, 413, "too_large")
    assert response.json["detail"] == "a form field is limited to 262144 bytes (256 KiB)"
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_at_the_limit_with_content_length_is_accepted(
    client: FlaskClient, tenant: TenantKey, settings: Settings, app_state: AppState
) -> None:
    body = b"".join(wav_body(settings.max_upload_bytes))
    response, _ = post_with_length(client, tenant, body)
    assert response.status_code == 202, response.json
    key = f"tenants/{tenant.tenant_id}/jobs/{response.json['id']}/input.wav"
    assert app_state.blobs.get_bytes(key) == wav_of_size(settings.max_upload_bytes)


def test_over_the_limit_without_content_length_is_413(
    client: FlaskClient,
    tenant: TenantKey,
    settings: Settings,
    job_rows: Rows,
    stored_keys: Keys,
) -> None:
    source = CountingSource(wav_body(64 * MIB))  # far more than the limit: reading must stop
    response = post_streaming(client, tenant, source, terminated=True)
    assert response.request.content_length is None
    assert_refused(response, 413, "too_large")
    assert source.bytes_read <= settings.max_upload_bytes + 2 * MIB
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_nine_mib_without_content_length_is_413(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    source = CountingSource(wav_body(9 * MIB))
    response = post_streaming(client, tenant, source, terminated=True)
    assert_refused(response, 413, "too_large")
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_at_the_limit_without_content_length_is_accepted(
    client: FlaskClient, tenant: TenantKey, settings: Settings, app_state: AppState
) -> None:
    source = CountingSource(wav_body(settings.max_upload_bytes))
    response = post_streaming(client, tenant, source, terminated=True)
    assert response.status_code == 202, response.json
    key = f"tenants/{tenant.tenant_id}/jobs/{response.json['id']}/input.wav"
    stored = app_state.blobs.get_bytes(key)
    assert stored == wav_of_size(settings.max_upload_bytes)


def test_an_undelimited_chunked_body_is_never_read(
    client: FlaskClient, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    """Without `wsgi.input_terminated` Werkzeug hands the app an empty stream (its safe fallback
    against endless bodies): the request is refused as a client error and nothing is read."""
    source = CountingSource(wav_body(MIB))
    response = post_streaming(client, tenant, source, terminated=False)
    assert response.status_code in {400, 411}, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    assert source.bytes_read == 0
    assert_nothing_left(tenant, job_rows, stored_keys)


def test_metadata_with_nan_is_bad_input(
    post_audio: PostAudio, tenant: TenantKey, job_rows: Rows, stored_keys: Keys
) -> None:
    """Python's json accepts NaN, JSON and PostgreSQL's JSONB do not: a 4xx, never a 503."""
    wav = (SAMPLES / "mono.wav").read_bytes()
    response = post_audio(tenant, wav, after={"metadata": '{"score": NaN}'})
    assert_refused(response, 422, "validation_error")
    assert_nothing_left(tenant, job_rows, stored_keys)


# --- refusals on the local store: no object and no folder left ---------------------------------


@pytest.fixture
def local_blobs(settings: Settings, tmp_path: Path) -> Iterator[tuple[FlaskClient, Path]]:
    """The app on a local blob directory (`make run`'s default) instead of S3."""
    root = tmp_path / "blobs"
    local = settings.model_copy(update={"storage_url": f"file://{root}"})
    app = create_app({"TESTING": True, "SETTINGS": local})
    yield app.test_client(), root
    app.extensions["callintel"].engine.dispose()


def _left_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


LOCAL_REFUSALS = {
    "too-large": (wav_of_size(8 * MIB + 1), {}, 413),
    "invalid-field-after-the-file": ((SAMPLES / "mono.wav").read_bytes(), {"externalid": "x"}, 422),
    "bad-json-field-after-the-file": ((SAMPLES / "mono.wav").read_bytes(), {"metadata": "{"}, 422),
}


@pytest.mark.parametrize(("data", "after", "status"), LOCAL_REFUSALS.values(), ids=LOCAL_REFUSALS)
def test_a_refusal_leaves_no_folder_in_the_local_store(
    local_blobs: tuple[FlaskClient, Path],
    tenant: TenantKey,
    job_rows: Rows,
    data: bytes,
    after: dict[str, str],
    status: int,
) -> None:
    client, root = local_blobs
    parts: list[tuple[str, Any]] = [("file", FileStorage(io.BytesIO(data), "call.wav"))]
    boundary, body = encode_multipart(MultiDict(parts + list(after.items())))
    response = client.post(
        "/v1/jobs",
        data=body,
        headers=tenant.headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == status, response.json
    assert job_rows(tenant.tenant_id) == []
    assert _left_in(root) == []


def test_a_truncated_body_leaves_no_folder_in_the_local_store(
    local_blobs: tuple[FlaskClient, Path], tenant: TenantKey
) -> None:
    client, root = local_blobs
    body = file_part((SAMPLES / "stereo.wav").read_bytes())[: MIB + 1234]  # no closing boundary
    response = client.post("/v1/jobs", headers=tenant.headers, data=body, content_type=MULTIPART)
    assert_refused(response, 400, "invalid_request")
    assert _left_in(root) == []
