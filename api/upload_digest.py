"""Read a retried `POST /v1/jobs` upload without acting on it, for its Idempotency-Key fingerprint.

It walks the multipart body with the same `read_form` as `api.intake.accept_audio`, but only
hashes the recording, so nothing is stored and the size limit still holds.
"""

from __future__ import annotations

from flask import request

from api.idempotency import upload_fingerprint
from api.problems import ApiProblem, too_large
from api.state import state
from api.uploads import (
    CHUNK,
    HashingPartStream,
    MalformedUpload,
    MultipartReader,
    UploadTooLarge,
    read_form,
)


def read_job_upload() -> str:
    """The fingerprint of this request's multipart upload (the body is consumed)."""
    settings = state().settings
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiProblem(400, "invalid_request", "multipart body without a boundary")
    reader = MultipartReader(
        request.stream, boundary.encode(), max_field_bytes=settings.max_form_field_bytes
    )
    try:
        fields, file_sha256 = _walk(reader, limit=settings.max_upload_bytes)
    except UploadTooLarge as exc:
        raise too_large(exc.what, exc.limit) from exc
    except MalformedUpload as exc:
        raise ApiProblem(400, "invalid_request", str(exc)) from exc
    return upload_fingerprint(fields, file_sha256)


def _walk(reader: MultipartReader, *, limit: int) -> tuple[dict[str, str], str | None]:
    file_sha256: str | None = None

    def digest(part: MultipartReader) -> None:
        nonlocal file_sha256
        stream = HashingPartStream(part, head=b"", limit=limit)
        while stream.read(CHUNK):
            pass
        file_sha256 = stream.sha256.hexdigest()

    fields = read_form(reader, digest)  # fills file_sha256 on the way
    return fields, file_sha256
