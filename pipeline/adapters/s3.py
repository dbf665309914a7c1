"""BlobStore on S3 or an S3-compatible server (MinIO) through boto3, streaming with bounded memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import BlobNotFound, PermanentError, PipelineError, TransientError

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


_MISSING = {"404", "NoSuchKey", "NotFound"}
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


class S3BlobStore:
    def __init__(
        self, *, bucket: str, prefix: str = "", endpoint_url: str | None, region: str
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )

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

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise TransientError("storage bucket is not reachable") from exc
