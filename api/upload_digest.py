"""Read a retried `POST /v1/jobs` upload without acting on it, for its Idempotency-Key fingerprint.

It walks the multipart body exactly as `api.intake.accept_audio` does (the first file part named
`file`/`audio` is the recording, other files are skipped, plain parts are fields) but only hashes
the file, so nothing is stored and the size limit still holds.
"""

from __future__ import annotations

from flask import request

from api.idempotency import upload_fingerprint
from api.intake import FILE_FIELDS, too_large
from api.problems import ApiProblem
from api.state import state
from api.uploads import CHUNK, HashingPartStream, MalformedUpload, MultipartReader, UploadTooLarge


def read_job_upload() -> str:
    """The fingerprint of this request's multipart upload (the body is consumed)."""
    limit = state().settings.max_upload_bytes
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiProblem(400, "invalid_request", "multipart body without a boundary")
    reader = MultipartReader(request.stream, boundary.encode())
    try:
        fields, file_sha256 = _walk(reader, limit=limit)
    except UploadTooLarge as exc:
        raise too_large(limit) from exc
    except MalformedUpload as exc:
        raise ApiProblem(400, "invalid_request", str(exc)) from exc
    return upload_fingerprint(fields, file_sha256)


def _walk(reader: MultipartReader, *, limit: int) -> tuple[dict[str, str], str | None]:
    fields: dict[str, str] = {}
    file_sha256: str | None = None
    while (part := reader.next_part()) is not None:
        if part.name in FILE_FIELDS and part.filename is not None and file_sha256 is None:
            stream = HashingPartStream(reader, head=b"", limit=limit)
            while stream.read(CHUNK):
                pass
            file_sha256 = stream.sha256.hexdigest()
        elif part.filename is None:
            fields[part.name] = reader.read_field()
    return fields, file_sha256
