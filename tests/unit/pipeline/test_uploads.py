"""Direct uploads becoming job inputs (pipeline.uploads) on a real local store, and upload URL
signatures."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.adapters.local_fs import LocalBlobStore
from pipeline.artifacts import upload_key
from pipeline.settings import Settings
from pipeline.uploads import (
    UPLOAD_ID,
    UploadRejected,
    input_from_blob,
    input_from_upload,
    new_upload_id,
    signature_valid,
    signing_secret,
    upload_signature,
)
from schemas.common import InputKind
from tests.conftest import SAMPLES

WAV = (SAMPLES / "stereo.wav").read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_new_upload_ids_match_the_pattern_and_differ() -> None:
    first, second = new_upload_id(), new_upload_id()
    assert UPLOAD_ID.fullmatch(first) and UPLOAD_ID.fullmatch(second)
    assert first != second


def test_a_wav_upload_becomes_an_audio_input_in_place(store: LocalBlobStore) -> None:
    upload_id = new_upload_id()
    key = upload_key("ten_1", upload_id)
    store.put_bytes(key, WAV, content_type="application/octet-stream")

    given = input_from_upload(store, tenant_id="ten_1", upload_id=upload_id, max_bytes=len(WAV))

    assert given.kind is InputKind.AUDIO
    assert (given.blob_key, given.bytes, given.format) == (key, len(WAV), "wav")
    assert given.content_type == "audio/wav"
    assert given.sha256 == f"etag:{store.stat(key).etag}"
    assert store.get_bytes(key) == WAV  # used where it is, not moved


def test_a_known_sha256_is_kept(store: LocalBlobStore) -> None:
    store.put_bytes("imports/a.wav", WAV, content_type="audio/wav")
    given = input_from_blob(store, "imports/a.wav", max_bytes=len(WAV), sha256="ab" * 32)
    assert given.sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "empty_upload"), (b"just some text, not audio\n" * 4, "unsupported_media_type")],
)
def test_unusable_content_is_rejected(store: LocalBlobStore, data: bytes, code: str) -> None:
    store.put_bytes("imports/x", data, content_type="text/plain")
    with pytest.raises(UploadRejected) as info:
        input_from_blob(store, "imports/x", max_bytes=1024)
    assert info.value.code == code


def test_too_large_names_the_limit(store: LocalBlobStore) -> None:
    store.put_bytes("imports/big.wav", WAV, content_type="audio/wav")
    with pytest.raises(UploadRejected) as info:
        input_from_blob(store, "imports/big.wav", max_bytes=len(WAV) - 1)
    assert info.value.code == "too_large"
    assert str(len(WAV) - 1) in info.value.message


@pytest.mark.parametrize("upload_id", ["upl_missing", "../../etc", "", "upl_" + "0" * 26])
def test_unknown_or_malformed_ids_are_not_found(store: LocalBlobStore, upload_id: str) -> None:
    with pytest.raises(UploadRejected) as info:
        input_from_upload(store, tenant_id="ten_1", upload_id=upload_id, max_bytes=1024)
    assert info.value.code == "upload_not_found"


def test_another_tenants_upload_is_not_found(store: LocalBlobStore) -> None:
    upload_id = new_upload_id()
    store.put_bytes(upload_key("ten_owner", upload_id), WAV, content_type="audio/wav")
    with pytest.raises(UploadRejected) as info:
        input_from_upload(store, tenant_id="ten_other", upload_id=upload_id, max_bytes=len(WAV))
    assert info.value.code == "upload_not_found"


# --- signatures ---------------------------------------------------------------------------------


SECRET_SETTINGS = "upload_signing_secret provider_webhook_secret admin_api_key assemblyai_api_key"
NO_SECRETS = dict.fromkeys([*SECRET_SETTINGS.split(), "gemini_api_key"])


def test_signing_secret_is_configured_or_derived_or_absent() -> None:
    def secret(**given: str) -> bytes | None:
        values = {**NO_SECRETS, **{k: SecretStr(v) for k, v in given.items()}}
        return signing_secret(Settings(**values))

    assert secret(upload_signing_secret="s3cret", admin_api_key="admin") == b"s3cret"
    derived = secret(admin_api_key="admin")
    assert derived is not None and b"admin" not in derived
    assert derived != secret(admin_api_key="other")
    assert secret() is None


def test_a_signature_is_valid_only_for_its_tenant_upload_and_time() -> None:
    upload_id, other_id = new_upload_id(), new_upload_id()
    args = {"tenant_id": "ten_1", "upload_id": upload_id, "expires": 1000}
    signature = upload_signature(b"k", **args)

    def valid(**changes: object) -> bool:
        given = {**args, "signature": signature, "now": 999.0, **changes}
        return signature_valid(b"k", **given)

    assert valid()
    assert not valid(now=1000.5)  # expired
    assert not valid(tenant_id="ten_2")
    assert not valid(upload_id=other_id)
    assert not valid(expires=2000)
    assert not valid(signature=signature[:-1] + ("0" if signature[-1] != "0" else "1"))
    assert not signature_valid(b"other key", **args, signature=signature, now=999.0)
