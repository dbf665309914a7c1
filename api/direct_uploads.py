"""`/v1/uploads`: direct uploads. A client asks for a URL, PUTs the recording there (S3 itself, or
this API for a local store), and the upload later becomes a job's input (pipeline.uploads)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import IO, BinaryIO, cast
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from api.auth import require_caller
from api.intake import strict_json
from api.problems import ApiProblem, problem_response, too_large
from api.rate_limits import rate_limited
from api.responses import json_response
from api.state import AppState, state
from api.uploads import UPLOAD, UploadTooLarge
from pipeline.artifacts import upload_key
from pipeline.uploads import (
    UploadRejected,
    new_upload_id,
    signature_valid,
    signing_secret,
    upload_signature,
)
from schemas.uploads import UploadIn, UploadReceived, UploadView

bp = Blueprint("direct_uploads", __name__, url_prefix="/v1/uploads")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_REJECTION_STATUS = {
    "upload_not_found": 404,
    "unsupported_media_type": 415,
    "empty_upload": 422,
    "too_large": 413,
}


def upload_problem(exc: UploadRejected) -> ApiProblem:
    """The problem a client sees for an upload that cannot become a job (any view raising it)."""
    return ApiProblem(_REJECTION_STATUS.get(exc.code, 422), exc.code, exc.message)


@bp.app_errorhandler(UploadRejected)
def _rejected(exc: UploadRejected) -> Response:
    return problem_response(upload_problem(exc))


@bp.post("")
@rate_limited("upload")
def create_upload() -> Response:
    caller, app = require_caller(), state()
    given = _upload_in()
    limit = app.settings.max_upload_bytes
    if given.bytes is not None and given.bytes > limit:
        raise too_large(UPLOAD, limit)
    content_type = given.content_type or DEFAULT_CONTENT_TYPE
    upload_id = new_upload_id()
    expires_s = app.settings.upload_url_expires_s
    expires = int(time.time()) + expires_s
    key = upload_key(caller.tenant_id, upload_id)
    url = app.blobs.presigned_put(key, content_type=content_type, expires_s=expires_s)
    view = UploadView(
        id=upload_id,
        url=url or _api_url(app, caller.tenant_id, upload_id, expires),
        headers={"Content-Type": content_type},
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
    return json_response(view, status=201)


def _upload_in() -> UploadIn:
    """The optional JSON body; no body at all means no hints."""
    if request.mimetype == "application/json":
        return UploadIn.model_validate(strict_json(request.get_data()))
    if not request.content_length:
        return UploadIn()
    raise ApiProblem(415, "unsupported_media_type", "send no body, or an application/json one")


def _api_url(app: AppState, tenant_id: str, upload_id: str, expires: int) -> str:
    """A URL of this API that takes the PUT: the signature is its credential, as on S3."""
    secret = signing_secret(app.settings)
    if secret is None:
        detail = "direct uploads to local storage need UPLOAD_SIGNING_SECRET"
        raise ApiProblem(503, "uploads_not_configured", detail)
    signature = upload_signature(secret, tenant_id=tenant_id, upload_id=upload_id, expires=expires)
    base = (app.settings.public_base_url or request.host_url).rstrip("/")
    query = urlencode({"tenant": tenant_id, "expires": expires, "signature": signature})
    return f"{base}{bp.url_prefix}/{upload_id}?{query}"


@bp.put("/<upload_id>")
def receive_upload(upload_id: str) -> Response:
    """The body of a signed PUT, streamed into the store under the signing tenant's upload key."""
    app = state()
    tenant_id = _signed_tenant(app, upload_id)
    limit, key = app.settings.max_upload_bytes, upload_key(tenant_id, upload_id)
    content_type = request.mimetype or DEFAULT_CONTENT_TYPE
    try:
        if request.content_length is not None and request.content_length > limit:
            raise UploadTooLarge(UPLOAD, limit)  # declared too long: nothing read
        body = BoundedStream(request.stream, limit=limit)
        app.blobs.put_stream(key, cast(BinaryIO, body), content_type=content_type)
    except UploadTooLarge as exc:
        app.blobs.delete(key)  # nothing is kept, not even an earlier upload to the same URL
        raise too_large(exc.what, exc.limit) from exc
    return json_response(UploadReceived(id=upload_id, bytes=body.size), status=201)


def _signed_tenant(app: AppState, upload_id: str) -> str:
    """The tenant the URL was signed for, or a 403 problem for a wrong, altered or expired URL."""
    tenant_id = request.args.get("tenant", "")
    expires = request.args.get("expires", "")
    secret = signing_secret(app.settings)
    well_formed = expires.isascii() and expires.isdecimal() and len(expires) <= 12
    if secret is None or not tenant_id or not well_formed:
        raise _invalid_signature()
    valid = signature_valid(
        secret,
        tenant_id=tenant_id,
        upload_id=upload_id,
        expires=int(expires),
        signature=request.args.get("signature", ""),
        now=time.time(),
    )
    if not valid:
        raise _invalid_signature()
    return tenant_id


def _invalid_signature() -> ApiProblem:
    detail = "the upload URL is not valid or has expired; ask POST /v1/uploads for a new one"
    return ApiProblem(403, "invalid_signature", detail)


class BoundedStream(io.RawIOBase):
    """A readable view of a request body that counts it and stops it past `limit` bytes."""

    def __init__(self, stream: IO[bytes], *, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._stream.read(len(target))
        n = len(chunk)
        target[:n] = chunk
        self.size += n
        if self.size > self._limit:
            raise UploadTooLarge(UPLOAD, self._limit)
        return n
