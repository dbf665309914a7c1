"""Choose the BlobStore from `STORAGE_URL`: `file://DIR` or `s3://BUCKET[/PREFIX]`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pipeline.ports import BlobStore
from pipeline.settings import Settings


def blob_store_from_settings(settings: Settings) -> BlobStore:
    url = urlsplit(settings.storage_url)
    if url.scheme == "file":
        return _local(url.netloc + url.path)
    if url.scheme == "s3":
        from pipeline.adapters.s3 import S3BlobStore  # boto3 only when S3 is configured

        return S3BlobStore(
            bucket=url.netloc,
            prefix=url.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
    raise ValueError(f"STORAGE_URL must start with file:// or s3://, got {url.scheme!r}")


def _local(path: str) -> BlobStore:
    from pipeline.adapters.local_fs import LocalBlobStore

    return LocalBlobStore(Path(path))
