"""Direct uploads: a client PUTs a recording straight into storage, then it becomes a job's input
without being copied or read whole (stat, 64 leading bytes and a sniff). No web framework here."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Literal

from pipeline.artifacts import upload_key
from pipeline.errors import BlobNotFound, PermanentError
from pipeline.ids import new_id
from pipeline.limits import check_audio_seconds
from pipeline.media import SNIFF_BYTES, head_channels, head_wav_seconds, sniff
from pipeline.ports import BlobStore
from pipeline.settings import Settings
from schemas.common import InputKind
from schemas.envelope import JobInput

UPLOAD_ID = re.compile(r"upl_[0-9a-z]{26}")
SUPPORTED = "WAV, MP3, FLAC, OGG, M4A or WebM audio"
RejectionCode = Literal["upload_not_found", "unsupported_media_type", "empty_upload", "too_large"]


class UploadRejected(PermanentError):
    """An upload that cannot become a job's input; `code` is one of RejectionCode."""

    code = "upload_rejected"

    def __init__(self, message: str, *, code: RejectionCode) -> None:
        super().__init__(message, code=code)


def new_upload_id() -> str:
    return new_id("upl")


def input_from_blob(
    blobs: BlobStore,
    key: str,
    *,
    max_bytes: int,
    sha256: str | None = None,
    limits: Settings | None = None,
) -> JobInput:
    """The JobInput for audio already stored under `key` (used in place: `blob_key` is `key`).

    Raises UploadRejected: upload_not_found, empty_upload, too_large or unsupported_media_type;
    with `limits`, TooLong for a WAV header declaring more than MAX_AUDIO_SECONDS.
    The object is never read whole here (it may be gigabytes, and intake must stay fast), so
    unless the caller knows its SHA-256 the input's `sha256` is `etag:<the store's ETag>`: stable
    for the same stored object, and distinct from any real digest (duplicate detection by content
    then only matches the same object, not the same bytes uploaded twice).
    """
    try:
        stat = blobs.stat(key)
        if stat.size == 0:
            raise UploadRejected("the upload is empty", code="empty_upload")
        if stat.size > max_bytes:
            raise UploadRejected(
                f"the upload has {stat.size} bytes; uploads are limited to {max_bytes} bytes",
                code="too_large",
            )
        head = blobs.head(key, SNIFF_BYTES)
        fmt = sniff(head)
    except BlobNotFound as exc:
        raise UploadRejected("no such upload", code="upload_not_found") from exc
    if fmt is None:
        raise UploadRejected(f"the upload is not {SUPPORTED}", code="unsupported_media_type")
    if limits is not None:
        check_audio_seconds(head_wav_seconds(head, total_bytes=stat.size), limits)
    return JobInput(
        kind=InputKind.AUDIO,
        blob_key=key,
        sha256=sha256 or f"etag:{stat.etag}",
        content_type=fmt.content_type,
        bytes=stat.size,
        format=fmt.ext,
        channels=head_channels(head),
    )


def input_from_upload(
    blobs: BlobStore,
    *,
    tenant_id: str,
    upload_id: str,
    max_bytes: int,
    limits: Settings | None = None,
) -> JobInput:
    """The JobInput for the tenant's direct upload `upload_id` (see input_from_blob).

    The key is built from `tenant_id`, so a tenant can only ever reach its own uploads: another
    tenant's id is simply not found (upload_not_found), like an id that was never issued.
    """
    if not UPLOAD_ID.fullmatch(upload_id):
        raise UploadRejected("no such upload", code="upload_not_found")
    key = upload_key(tenant_id, upload_id)
    return input_from_blob(blobs, key, max_bytes=max_bytes, limits=limits)


# --- signed upload URLs of a store that cannot presign (a local directory) ----------------------


def signing_secret(settings: Settings) -> bytes | None:
    """UPLOAD_SIGNING_SECRET, else one derived from a secret the deployment already has (so all
    API processes agree without more configuration), else None: then there are no such URLs."""
    if settings.upload_signing_secret is not None:
        return settings.upload_signing_secret.get_secret_value().encode()
    for base in (
        settings.provider_webhook_secret,
        settings.admin_api_key,
        settings.assemblyai_api_key,
        settings.gemini_api_key,
    ):
        if base is not None:
            key = base.get_secret_value().encode()
            return hmac.new(key, b"callintel direct upload", hashlib.sha256).digest()
    return None


def upload_signature(secret: bytes, *, tenant_id: str, upload_id: str, expires: int) -> str:
    message = f"{tenant_id}\n{upload_id}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_valid(
    secret: bytes, *, tenant_id: str, upload_id: str, expires: int, signature: str, now: float
) -> bool:
    """Whether `signature` was made by us for exactly this tenant, upload and expiry, unexpired."""
    if now > expires or not UPLOAD_ID.fullmatch(upload_id):
        return False
    expected = upload_signature(secret, tenant_id=tenant_id, upload_id=upload_id, expires=expires)
    return hmac.compare_digest(expected, signature)
