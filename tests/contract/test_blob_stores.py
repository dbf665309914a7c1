"""One BlobStore contract, run against every adapter: the local directory and S3 (moto's server).

The S3 store talks real HTTP to the session's moto server; each test gets its own key prefix (S3)
or directory (local), so tests never see each other's objects.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
import pytest
import requests

from pipeline.adapters.local_fs import LocalBlobStore
from pipeline.adapters.s3 import S3BlobStore, S3Source
from pipeline.adapters.storage import source_for
from pipeline.errors import BlobNotFound, InvalidInput, TransientError
from pipeline.ports import BlobStat, BlobStore
from pipeline.settings import Settings
from tests.conftest import BUCKET
from tests.support.services import free_port

MIB = 1024 * 1024
REGION = "us-east-1"


class Boom(Exception):
    """Raised by a source stream part-way through, like a client that disconnects."""


class GeneratorStream(io.RawIOBase):
    """A non-seekable, read-only stream over a generator of chunks (a socket-like source)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def random_chunks(count: int, *, seed: int, size: int = MIB) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.randbytes(size)


def failing_chunks(count: int) -> Iterator[bytes]:
    yield from random_chunks(count, seed=7)
    raise Boom("the source went away")


def sha256_of_chunks(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Backend:
    """A store under test and a way to see everything it holds, independent of the adapter."""

    store: BlobStore
    list_all: Callable[[], list[str]]


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)

    def list_all() -> list[str]:
        """Files, and folders left empty (S3 has no folders: an empty one is a leftover)."""
        files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
        empty = [f"{p.relative_to(root)}/" for p in root.rglob("*") if p.is_dir() and _empty(p)]
        return sorted(files + empty)

    return Backend(store, list_all)


def _empty(folder: Path) -> bool:
    return next(folder.iterdir(), None) is None


def _s3(endpoint: str) -> Backend:
    prefix = f"contract/{uuid.uuid4().hex}"
    store = S3BlobStore(bucket=BUCKET, prefix=prefix, endpoint_url=endpoint, region=REGION)
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)

    def list_all() -> list[str]:
        """Objects, and unfinished multipart uploads (which cost storage but are not listed)."""
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
        uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix + "/")
        keys = [o["Key"] for o in listing.get("Contents", [])]
        keys += [f"{u['Key']} (unfinished upload)" for u in uploads.get("Uploads", [])]
        return sorted(k.removeprefix(prefix + "/") for k in keys)

    return Backend(store, list_all)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local(tmp_path)
    return _s3(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


# --- streaming ---------------------------------------------------------------------------------


def test_put_stream_from_a_non_seekable_stream_round_trips(
    store: BlobStore, tmp_path: Path
) -> None:
    expected_sha, expected_size = sha256_of_chunks(random_chunks(20, seed=1))
    source = GeneratorStream(random_chunks(20, seed=1))
    assert not source.seekable()

    store.put_stream("calls/big.bin", cast(BinaryIO, source), content_type="audio/wav")

    dest = tmp_path / "downloaded.bin"
    store.download("calls/big.bin", dest)
    assert dest.stat().st_size == expected_size == 20 * MIB
    assert sha256_of_file(dest) == expected_sha
    data = store.get_bytes("calls/big.bin")
    assert len(data) == expected_size
    assert hashlib.sha256(data).hexdigest() == expected_sha


def test_put_stream_of_an_empty_stream_stores_an_empty_object(store: BlobStore) -> None:
    store.put_stream("empty.bin", cast(BinaryIO, GeneratorStream(iter(()))), content_type="x/y")
    assert store.exists("empty.bin")
    assert store.get_bytes("empty.bin") == b""


@pytest.mark.parametrize("fail_after_mib", [1, 12], ids=["single-part", "multipart"])
def test_a_stream_failing_mid_way_leaves_no_object(backend: Backend, fail_after_mib: int) -> None:
    source = GeneratorStream(failing_chunks(fail_after_mib))

    # The source's own error comes through unchanged: intake relies on this to tell "too large"
    # and "malformed upload" apart from storage faults.
    with pytest.raises(Boom):
        backend.store.put_stream("calls/partial.bin", cast(BinaryIO, source), content_type="x/y")

    assert not backend.store.exists("calls/partial.bin")
    with pytest.raises(BlobNotFound):
        backend.store.get_bytes("calls/partial.bin")
    assert backend.list_all() == []  # no temp file or stray part either


def test_put_stream_overwrites(store: BlobStore) -> None:
    store.put_bytes("k", b"old contents that are longer", content_type="text/plain")
    store.put_stream("k", cast(BinaryIO, GeneratorStream(iter([b"new", b"er"]))), content_type="x")
    assert store.get_bytes("k") == b"newer"


# --- small objects -----------------------------------------------------------------------------


def test_put_bytes_and_get_bytes(store: BlobStore) -> None:
    store.put_bytes(
        "tenants/t/jobs/j/transcribe.json", b'{"a": 1}', content_type="application/json"
    )
    assert store.get_bytes("tenants/t/jobs/j/transcribe.json") == b'{"a": 1}'


def test_overwrite_replaces_the_object(store: BlobStore) -> None:
    store.put_bytes("k.json", b"first version, long", content_type="application/json")
    store.put_bytes("k.json", b"second", content_type="application/json")
    assert store.get_bytes("k.json") == b"second"


def test_exists(store: BlobStore) -> None:
    assert not store.exists("a/b.txt")
    store.put_bytes("a/b.txt", b"x", content_type="text/plain")
    assert store.exists("a/b.txt")
    assert not store.exists("a/b.tx")
    assert not store.exists("a")  # a "directory" is not an object


def test_delete_removes_and_is_idempotent(store: BlobStore) -> None:
    store.put_bytes("gone.txt", b"x", content_type="text/plain")
    store.delete("gone.txt")
    assert not store.exists("gone.txt")
    store.delete("gone.txt")
    store.delete("never/existed.txt")
    with pytest.raises(BlobNotFound):
        store.get_bytes("gone.txt")


def test_deleting_the_last_key_of_a_folder_leaves_nothing(backend: Backend) -> None:
    """A refused upload is deleted at once: no empty job folder may stay behind."""
    backend.store.put_bytes("tenants/t/jobs/j/input.wav", b"RIFF", content_type="audio/wav")
    backend.store.put_bytes("tenants/t/keep.txt", b"k", content_type="text/plain")
    backend.store.delete("tenants/t/jobs/j/input.wav")
    assert backend.list_all() == ["tenants/t/keep.txt"]
    backend.store.delete("tenants/t/keep.txt")
    assert backend.list_all() == []
    backend.store.put_bytes("tenants/t/jobs/j/again.json", b"{}", content_type="x/y")
    assert backend.store.get_bytes("tenants/t/jobs/j/again.json") == b"{}"  # folders come back


def test_delete_leaves_other_keys_alone(backend: Backend) -> None:
    backend.store.put_bytes("a/1", b"1", content_type="text/plain")
    backend.store.put_bytes("a/2", b"2", content_type="text/plain")
    backend.store.delete("a/1")
    assert backend.list_all() == ["a/2"]


def test_delete_prefix_removes_the_folder_and_nothing_else(backend: Backend) -> None:
    for key in ("jobs/j1/input.wav", "jobs/j1/transcribe.json", "jobs/j1/deep/x", "jobs/j10/y"):
        backend.store.put_bytes(key, b"x", content_type="text/plain")
    backend.store.put_bytes("jobs/j1.json", b"a sibling key", content_type="text/plain")

    assert backend.store.delete_prefix("jobs/j1") == 3

    assert backend.list_all() == ["jobs/j1.json", "jobs/j10/y"]  # longer names are not under it
    assert backend.store.delete_prefix("jobs/j1/") == 0  # idempotent, trailing slash or not
    assert backend.store.delete_prefix("jobs/never") == 0


def test_delete_prefix_spans_many_delete_batches(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.adapters.s3.DELETE_BATCH", 2)  # S3 lists and deletes by pages
    for i in range(5):
        backend.store.put_bytes(f"t/jobs/j/{i}.json", b"{}", content_type="application/json")

    assert backend.store.delete_prefix("t/jobs/j") == 5
    assert backend.list_all() == []


@pytest.mark.parametrize("prefix", ["", "/", "../x", "a/../.."])
def test_delete_prefix_refuses_an_unsafe_prefix(backend: Backend, prefix: str) -> None:
    backend.store.put_bytes("a/b", b"x", content_type="text/plain")
    with pytest.raises(InvalidInput):
        backend.store.delete_prefix(prefix)
    assert backend.list_all() == ["a/b"]


def test_s3_delete_prefix_aborts_unfinished_uploads(s3_endpoint: str) -> None:
    backend = _s3(s3_endpoint)
    store = cast(S3BlobStore, backend.store)
    store.client.create_multipart_upload(Bucket=BUCKET, Key=store._key("jobs/j/input.wav"))
    store.client.create_multipart_upload(Bucket=BUCKET, Key=store._key("jobs/k/input.wav"))

    assert store.delete_prefix("jobs/j") == 0  # an unfinished upload is not an object

    assert backend.list_all() == ["jobs/k/input.wav (unfinished upload)"]


def test_missing_key_raises_blob_not_found(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(BlobNotFound):
        store.get_bytes("no/such/key")
    with pytest.raises(BlobNotFound):
        store.download("no/such/key", tmp_path / "out.bin")


def test_a_prefix_of_stored_keys_is_not_found(store: BlobStore, tmp_path: Path) -> None:
    """'a' is absent when only 'a/b' exists: reads say BlobNotFound, never a raw OS error."""
    store.put_bytes("a/b", b"x", content_type="text/plain")
    with pytest.raises(BlobNotFound):
        store.get_bytes("a")
    with pytest.raises(BlobNotFound):
        store.download("a", tmp_path / "out.bin")


def test_check_passes(store: BlobStore) -> None:
    store.check()


# --- key safety (local store: a key must never name a path outside its root) ------------------


BAD_KEYS = ["../escape", "a/../../escape", "a/../b", "/etc/passwd", "/abs/key", ""]
OPERATIONS: dict[str, Callable[[BlobStore, str, Path], object]] = {
    "put_bytes": lambda s, k, _: s.put_bytes(k, b"x", content_type="text/plain"),
    "put_stream": lambda s, k, _: s.put_stream(k, io.BytesIO(b"x"), content_type="text/plain"),
    "get_bytes": lambda s, k, _: s.get_bytes(k),
    "download": lambda s, k, d: s.download(k, d / "out.bin"),
    "exists": lambda s, k, _: s.exists(k),
    "delete": lambda s, k, _: s.delete(k),
}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_store_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root" / "blobs"
    store = LocalBlobStore(root)
    outside = tmp_path / "root" / "b"
    outside.write_bytes(b"outside")
    accepted = []
    for name, operation in OPERATIONS.items():
        try:
            operation(store, key, tmp_path)
        except InvalidInput:
            continue
        except Exception as exc:  # anything else is a failure too, reported below with the rest
            accepted.append(f"{name} raised {type(exc).__name__}")
        else:
            accepted.append(f"{name} accepted it")
    assert accepted == [], f"key {key!r} was not refused with InvalidInput: {accepted}"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [outside]
    assert outside.read_bytes() == b"outside"


# --- S3 faults ---------------------------------------------------------------------------------


def test_s3_check_on_a_missing_bucket_is_transient(s3_endpoint: str) -> None:
    store = S3BlobStore(
        bucket=f"missing-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint, region=REGION
    )
    with pytest.raises(TransientError):
        store.check()


@pytest.fixture
def unreachable_s3() -> S3BlobStore:
    """A store whose endpoint is a closed port (connection refused at once, then retried)."""
    return S3BlobStore(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{free_port()}", region=REGION)


def test_s3_unreachable_endpoint_is_transient_on_write(unreachable_s3: S3BlobStore) -> None:
    with pytest.raises(TransientError):
        unreachable_s3.put_bytes("k", b"x", content_type="text/plain")


def test_s3_unreachable_endpoint_is_transient_on_read(unreachable_s3: S3BlobStore) -> None:
    # Not BlobNotFound: a storage outage must be retried, never mistaken for a missing input.
    with pytest.raises(TransientError) as info:
        unreachable_s3.get_bytes("k")
    assert not isinstance(info.value, BlobNotFound)


def test_s3_unreachable_endpoint_fails_check(unreachable_s3: S3BlobStore) -> None:
    with pytest.raises(TransientError):
        unreachable_s3.check()


# --- head, stat, presigned_put -----------------------------------------------------------------


def test_head_returns_the_leading_bytes(store: BlobStore) -> None:
    store.put_bytes("calls/a.bin", bytes(range(200)), content_type="x/y")
    assert store.head("calls/a.bin", 64) == bytes(range(64))
    assert store.head("calls/a.bin", 1) == b"\x00"
    assert store.head("calls/a.bin", 1000) == bytes(range(200))  # shorter than asked: all of it


def test_head_of_an_empty_object_is_empty(store: BlobStore) -> None:
    store.put_bytes("empty.bin", b"", content_type="x/y")
    assert store.head("empty.bin", 64) == b""


def test_head_and_stat_of_a_missing_key_raise_blob_not_found(store: BlobStore) -> None:
    store.put_bytes("a/b", b"x", content_type="text/plain")
    for key in ("no/such/key", "a"):  # "a" is only a prefix of a stored key
        with pytest.raises(BlobNotFound):
            store.head(key, 64)
        with pytest.raises(BlobNotFound):
            store.stat(key)


def test_stat_reports_size_and_an_etag_that_changes_with_the_content(store: BlobStore) -> None:
    store.put_bytes("calls/s.bin", b"first", content_type="x/y")
    first = store.stat("calls/s.bin")
    assert (first.key, first.size) == ("calls/s.bin", 5)
    assert first.etag
    assert store.stat("calls/s.bin") == first  # stable while the object is unchanged

    store.put_bytes("calls/s.bin", b"other", content_type="x/y")  # same size, new content
    second = store.stat("calls/s.bin")
    assert second.size == 5
    assert second.etag != first.etag


def test_local_store_has_no_presigned_put(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    assert (
        store.presigned_put("tenants/t/uploads/u", content_type="audio/wav", expires_s=60) is None
    )


def test_s3_presigned_put_accepts_an_upload(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint).store
    url = store.presigned_put("uploads/u1", content_type="audio/wav", expires_s=300)
    assert url is not None

    response = requests.put(
        url, data=b"RIFF....WAVE", headers={"Content-Type": "audio/wav"}, timeout=10
    )

    assert response.status_code == 200, response.text
    assert store.get_bytes("uploads/u1") == b"RIFF....WAVE"
    assert store.stat("uploads/u1").size == 12


# --- S3Source: a tenant's own bucket -----------------------------------------------------------


@pytest.fixture
def source_prefix(s3_endpoint: str) -> str:
    """Five objects of distinct sizes under a fresh prefix of the test bucket."""
    prefix = f"source/{uuid.uuid4().hex}/"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    for i in range(5):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}call-{i}.wav", Body=b"x" * (i + 1))
    client.put_object(Bucket=BUCKET, Key=f"{prefix}../elsewhere", Body=b"y")
    return prefix


def test_s3_source_lists_every_object_across_pages(s3_endpoint: str, source_prefix: str) -> None:
    source = S3Source(BUCKET, s3_endpoint, REGION)
    seen: list[BlobStat] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = source.list_page(source_prefix + "call-", token=token, limit=2)
        pages += 1
        assert len(page) <= 2
        seen += page
        if token is None:
            break
    assert pages == 3
    assert [s.key for s in seen] == [f"{source_prefix}call-{i}.wav" for i in range(5)]
    assert [s.size for s in seen] == [1, 2, 3, 4, 5]
    assert all(s.etag for s in seen)


@pytest.mark.parametrize("destination", ["local", "s3"])
def test_s3_source_head_and_missing_objects(
    s3_endpoint: str, source_prefix: str, tmp_path: Path, destination: str
) -> None:
    source = S3Source(BUCKET, s3_endpoint, REGION)
    assert source.head(f"{source_prefix}call-4.wav", 3) == b"xxx"
    with pytest.raises(BlobNotFound):
        source.head(f"{source_prefix}missing.wav", 3)
    backend = _local(tmp_path) if destination == "local" else _s3(s3_endpoint)
    with pytest.raises(BlobNotFound):
        source.copy_into(
            f"{source_prefix}missing.wav", backend.store, "k", content_type="audio/wav"
        )
    assert backend.list_all() == []


@pytest.mark.parametrize("destination", ["s3-same-endpoint", "s3-other-endpoint", "local"])
def test_s3_source_copies_into_our_store(
    s3_endpoint: str, tmp_path: Path, destination: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    key = f"source/{uuid.uuid4().hex}/big.wav"
    data = random.Random(3).randbytes(9 * MIB)  # above the multipart threshold
    client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="application/octet-stream")
    if destination == "local":
        store: BlobStore = LocalBlobStore(tmp_path / "blobs")
    else:
        # The same moto server under another name: not "the same endpoint", so it streams.
        endpoint = s3_endpoint.replace("127.0.0.1", "localhost")
        store = _s3(s3_endpoint if destination == "s3-same-endpoint" else endpoint).store

    S3Source(BUCKET, s3_endpoint, REGION).copy_into(
        key, store, "tenants/t/uploads/u", content_type="audio/wav"
    )

    assert hashlib.sha256(store.get_bytes("tenants/t/uploads/u")).digest() == (
        hashlib.sha256(data).digest()
    )
    if isinstance(store, S3BlobStore):
        head = client.head_object(Bucket=BUCKET, Key=store._key("tenants/t/uploads/u"))
        assert head["ContentType"] == "audio/wav"


def test_s3_source_unreachable_is_transient() -> None:
    source = S3Source(BUCKET, f"http://127.0.0.1:{free_port()}", REGION)
    with pytest.raises(TransientError):
        source.list_page("", token=None)


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://tenant-bucket/calls/2026-12-04/", "tenant-bucket", "calls/2026-12-04/"),
        ("s3://tenant-bucket", "tenant-bucket", ""),
        ("s3://tenant-bucket/", "tenant-bucket", ""),
    ],
)
def test_source_for_parses_s3_uris(settings: Settings, uri: str, bucket: str, prefix: str) -> None:
    source = source_for(uri, settings)
    assert (source.bucket, source.prefix) == (bucket, prefix)
    assert source.endpoint_url == settings.s3_endpoint_url


@pytest.mark.parametrize("uri", ["file:///tmp/x", "s3://", "https://bucket/x", "s3://b/p?x=1"])
def test_source_for_refuses_other_uris(settings: Settings, uri: str) -> None:
    with pytest.raises(InvalidInput):
        source_for(uri, settings)
