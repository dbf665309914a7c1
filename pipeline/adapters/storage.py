"""Choose the BlobStore from `STORAGE_URL`: `file://DIR` or `s3://BUCKET[/PREFIX]`; and open a
tenant's own bucket (`s3://BUCKET/PREFIX/`) as an import source."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.errors import InvalidInput
from pipeline.ports import BlobStore
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.adapters.s3 import S3Source


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


def source_for(uri: str, settings: Settings) -> S3Source:
    """A reader of `s3://BUCKET[/PREFIX]` on our S3 endpoint; `.prefix` keeps PREFIX as given
    (e.g. "calls/2026-12-04/"). Raises InvalidInput for anything that is not such a URI."""
    url = urlsplit(uri)
    if url.scheme != "s3" or not url.netloc or url.query or url.fragment:
        raise InvalidInput("the source must be an s3://BUCKET/PREFIX/ URI")
    from pipeline.adapters.s3 import S3Source  # boto3 only when S3 is used

    return S3Source(
        url.netloc,
        settings.s3_endpoint_url,
        settings.s3_region,
        prefix=url.path.lstrip("/"),
    )
