"""BlobStore on S3 or an S3-compatible server (MinIO) through boto3, streaming with bounded memory;
and S3Source, a reader of a tenant's own bucket for server-side imports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import (
    BlobNotFound,
    InvalidInput,
    PermanentError,
    PipelineError,
    TransientError,
)
from pipeline.ports import BlobStat, BlobStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Measured: a 256 MiB non-seekable upload grew RSS by 126 MiB with boto3's defaults, 46 MiB with this.
TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024,
    multipart_chunksize=8 * 1024 * 1024,
    max_concurrency=2,
    max_io_queue=2,
    use_threads=True,
)
# Not a constructor option, but honoured: at most two 8 MiB parts are buffered at once.
TRANSFER.max_in_memory_upload_chunks = 2


class FullReads(io.RawIOBase):
    """A view of a stream whose `read(n)` returns n bytes unless the stream ends.

    boto3 reads `multipart_threshold` bytes once to choose between one PutObject and a multipart
    upload; a stream that returns short reads (a socket, our upload parser) would make it choose
    PutObject and then read the whole body into memory. Full reads also keep every part at the
    chunk size, above S3's 5 MiB minimum part size.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        view, filled = memoryview(target).cast("B"), 0
        while filled < len(view):
            chunk = self._stream.read(len(view) - filled)
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled


DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys a call
_MISSING = {"404", "NoSuchKey", "NotFound"}
_EMPTY_RANGE = "InvalidRange"  # a ranged GET of an empty object (416): there are no bytes
_TRANSIENT = {"500", "502", "503", "504", "SlowDown", "RequestTimeout", "InternalError"}


def translate(exc: Exception, key: str) -> PipelineError:
    """Map a boto error to our tree: missing → BlobNotFound, throttling/5xx/network → transient."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            return BlobNotFound(f"no blob {key}")
        if code in _TRANSIENT:
            return TransientError(f"storage unavailable ({code})")
        return PermanentError(f"storage refused the request ({code})", code="storage_error")
    return TransientError(f"storage unreachable ({type(exc).__name__})")


def _client(endpoint_url: str | None, region: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )


def _head(client: S3Client, bucket: str, key: str, size: int, *, name: str) -> bytes:
    """The first `size` bytes of s3://bucket/key by a ranged GET; `name` is the key in errors."""
    try:
        if size <= 0:
            client.head_object(Bucket=bucket, Key=key)
            return b""
        response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
        data: bytes = response["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == _EMPTY_RANGE:
            return b""
        raise translate(exc, name) from exc
    except BotoCoreError as exc:
        raise translate(exc, name) from exc
    return data[:size]  # a server that ignores Range sends everything


def _stat(client: S3Client, bucket: str, key: str, *, name: str) -> BlobStat:
    try:
        response = client.head_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, name) from exc
    return BlobStat(
        key=name, size=int(response["ContentLength"]), etag=str(response["ETag"]).strip('"')
    )


class S3BlobStore:
    def __init__(
        self, *, bucket: str, prefix: str = "", endpoint_url: str | None, region: str
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client = _client(endpoint_url, region)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_stream(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        try:
            self.client.upload_fileobj(
                io.BufferedReader(FullReads(stream), buffer_size=TRANSFER.multipart_chunksize),
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type},
                Config=TRANSFER,
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def download(self, key: str, dest: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(dest), Config=TRANSFER)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def head(self, key: str, size: int) -> bytes:
        return _head(self.client, self.bucket, self._key(key), size, name=key)

    def stat(self, key: str) -> BlobStat:
        return _stat(self.client, self.bucket, self._key(key), name=key)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            error = translate(exc, key)
            if isinstance(error, BlobNotFound):
                return False
            raise error from exc
        except BotoCoreError as exc:
            raise translate(exc, key) from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Listed a page (≤ 1000 keys) at a time, each page removed by one DeleteObjects call;
        unfinished multipart uploads under the folder are aborted (they are storage too)."""
        folder = prefix.strip("/")
        if not folder or ".." in folder.split("/"):
            raise InvalidInput("invalid blob prefix")
        full = self._key(folder) + "/"
        try:
            removed = sum(self._delete_page(page) for page in self._pages(full))
            self._abort_uploads(full)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, folder) from exc
        return removed

    def _pages(self, full_prefix: str) -> Iterator[list[str]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=full_prefix, PaginationConfig={"PageSize": DELETE_BATCH}
        )
        for page in pages:
            keys = [o["Key"] for o in page.get("Contents", [])]
            if keys:
                yield keys

    def _delete_page(self, keys: list[str]) -> int:
        response = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
        if errors := response.get("Errors", []):
            code = str(errors[0].get("Code", ""))
            if code in _TRANSIENT:
                raise TransientError(f"storage unavailable ({code})")
            raise PermanentError(f"storage refused a delete ({code})", code="storage_error")
        return len(keys)

    def _abort_uploads(self, full_prefix: str) -> None:
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full_prefix)
        for upload in listing.get("Uploads", []):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        try:
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_s,
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc
        return url

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str | None:
        """Content-Type is signed: the uploader must send exactly `content_type`."""
        params = {"Bucket": self.bucket, "Key": self._key(key), "ContentType": content_type}
        try:
            url: str = self.client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=expires_s, HttpMethod="PUT"
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc
        return url

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise TransientError("storage bucket is not reachable") from exc


class S3Source:
    """Read-only access to a tenant's own bucket (server-side import of its recordings).

    Keys are relative to the bucket. `prefix` is where the import URI pointed; callers pass it (or
    a narrower one) to `list_page`. Credentials are the deployment's (boto3's usual chain).
    """

    def __init__(
        self, bucket: str, endpoint_url: str | None, region: str, *, prefix: str = ""
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.client = _client(endpoint_url, region)

    def list_page(
        self, prefix: str, *, token: str | None, limit: int = 1000
    ) -> tuple[list[BlobStat], str | None]:
        """One ListObjectsV2 page of objects under `prefix`, and the token of the next (or None)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if token:
            args["ContinuationToken"] = token
        try:
            page = self.client.list_objects_v2(**args)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, f"{self.bucket}/{prefix}") from exc
        stats = [
            BlobStat(key=o["Key"], size=int(o["Size"]), etag=str(o.get("ETag", "")).strip('"'))
            for o in page.get("Contents", [])
        ]
        following = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return stats, following

    def head(self, key: str, size: int) -> bytes:
        return _head(self.client, self.bucket, key, size, name=key)

    def copy_into(self, key: str, store: BlobStore, dest_key: str, *, content_type: str) -> None:
        """Copy one object into our store: server-side when both live behind the same endpoint,
        else streamed through this process in bounded chunks. Raises BlobNotFound when absent."""
        try:
            if isinstance(store, S3BlobStore) and store.endpoint_url == self.endpoint_url:
                store.client.copy(
                    {"Bucket": self.bucket, "Key": key},
                    store.bucket,
                    store._key(dest_key),
                    ExtraArgs={"ContentType": content_type, "MetadataDirective": "REPLACE"},
                    Config=TRANSFER,
                )
                return
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                store.put_stream(dest_key, cast(BinaryIO, body), content_type=content_type)
            finally:
                body.close()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc
