"""`Idempotency-Key` on requests that create or delete something (POSTs, `DELETE /v1/jobs/{id}`),
with Stripe's semantics, as a view decorator.

The first request with a key claims it (a committed INSERT on a unique (tenant, key) constraint), runs,
and stores its response; a retry gets that response again with `Idempotent-Replayed: true`. While
the first still runs a retry gets 409 `idempotency_in_flight`; the same key on a different request,
422 `idempotency_conflict`. 2xx to 4xx answers are stored; a 5xx, a 429 or a crash releases the key so
the client can retry.

Fingerprints. A non-streamed body (JSON) is fingerprinted before the claim: sha256 over the method,
path, query, media type and the canonical JSON. A streamed multipart upload can only be fingerprinted
once read: from its form fields and its file's sha256. The view reports that with `record_upload`;
a 4xx refused before the body was read (415, 413, malformed) has no fingerprint and releases the key.
A retry of a completed key is read through (hashed, never stored) before it is compared, so a
different file under a used key is detected, and refused with 422, only after its upload.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import ParamSpec

from flask import Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from api.auth import require_caller
from api.problems import ApiProblem, problem_response
from api.state import AppState, state
from pipeline.db import idempotency as keys

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Content-Type", "Location", "Callintel-Duplicate-Of")
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_UPLOAD = "idempotency_upload_fingerprint"

P = ParamSpec("P")
UploadReader = Callable[[], str]  # the fingerprint of this multipart request, read but not acted on


def idempotent(
    *, read_upload: UploadReader | None = None
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Make a creating (or deleting) view honour `Idempotency-Key`.

    `read_upload` is for views that stream multipart uploads (they call `record_upload` once read):
    it reads a retried upload without acting on it, to compare it with the stored request.
    """

    def decorate(view: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            if request.headers.get(HEADER) is None:
                return view(*args, **kwargs)
            return _with_key(read_upload, lambda: view(*args, **kwargs))

        return wrapper

    return decorate


def _with_key(read_upload: UploadReader | None, run: Callable[[], Response]) -> Response:
    caller, app = require_caller(), state()
    key = _valid_key(request.headers.get(HEADER, ""))
    streamed = read_upload is not None and request.mimetype == "multipart/form-data"
    fingerprint = None if streamed else body_fingerprint()
    asked = keys.KeyRequest(caller.tenant_id, key, request.method, request.path, fingerprint)
    held = keys.claim(
        app.sessions,
        asked,
        ttl_s=app.settings.idempotency_ttl_s,
        stale_after_s=app.settings.idempotency_stale_after_s,
    )
    if isinstance(held, keys.InFlight):
        detail = "a request with this Idempotency-Key is still being processed; retry shortly"
        raise ApiProblem(409, "idempotency_in_flight", detail, headers={"Retry-After": "1"})
    if isinstance(held, keys.Stored):
        if streamed and read_upload is not None and held.fingerprint is not None:
            fingerprint = read_upload()
        return _replay(held, fingerprint)
    return _execute(app, held.claim_id, fingerprint, run)


def _valid_key(raw: str) -> str:
    if not _VALID_KEY.fullmatch(raw):
        detail = f"{HEADER} must be 1-255 printable ASCII characters"
        raise ApiProblem(400, "invalid_idempotency_key", detail)
    return raw


def _replay(stored: keys.Stored, fingerprint: str | None) -> Response:
    same_target = (stored.method, stored.path) == (request.method, request.path)
    if not same_target or (stored.fingerprint not in (None, fingerprint)):
        detail = f"this {HEADER} was already used with a different request"
        raise ApiProblem(422, "idempotency_conflict", detail)
    response = Response(stored.body, status=stored.status_code, headers=stored.headers)
    response.headers[REPLAYED] = "true"
    return response


def _execute(
    app: AppState, claim_id: str, fingerprint: str | None, run: Callable[[], Response]
) -> Response:
    g.pop(_UPLOAD, None)
    try:
        response = run()
    except ApiProblem as problem:
        response = problem_response(problem)  # a 4xx is the request's outcome: stored below
    except BaseException:
        _settle(app, claim_id, None, fingerprint=None)
        raise
    _settle(app, claim_id, response, fingerprint=fingerprint or g.get(_UPLOAD))
    return response


def _settle(
    app: AppState, claim_id: str, response: Response | None, *, fingerprint: str | None
) -> None:
    """Store what a retry must see, or release the key when a retry should run again."""
    status = response.status_code if response is not None else 500
    keep = status < 500 and status != 429 and (status < 400 or fingerprint is not None)
    try:
        if response is not None and keep:
            headers = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
            keys.complete(
                app.sessions,
                claim_id,
                fingerprint=fingerprint,
                status_code=status,
                headers=headers,
                body=response.get_data(),
            )
        else:
            keys.release(app.sessions, claim_id)
    except SQLAlchemyError:
        # The answer itself is right; the key stays in flight until it goes stale.
        log.warning("could not settle an idempotency key", exc_info=True)


def record_upload(fields: Mapping[str, str], file_sha256: str | None) -> None:
    """Called by a streaming view once the whole upload is read: its fingerprint for this key."""
    setattr(g, _UPLOAD, upload_fingerprint(fields, file_sha256))


def upload_fingerprint(fields: Mapping[str, str], file_sha256: str | None) -> str:
    """A multipart request's fingerprint: its form fields and its file's content hash.

    The file name is left out: it is never used, so it cannot change the outcome.
    """
    canonical = {"fields": dict(sorted(fields.items())), "file_sha256": file_sha256}
    return _digest("multipart/form-data", json.dumps(canonical, sort_keys=True).encode())


def body_fingerprint() -> str:
    """A non-streamed request's fingerprint; JSON bodies are compared by value, not by bytes."""
    data = request.get_data(cache=True)
    if request.is_json:
        data = _canonical_json(data)
    return _digest(request.mimetype, data)


def _canonical_json(data: bytes) -> bytes:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return data  # not JSON: the bytes are all there is to compare
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(media_type: str, body: bytes) -> str:
    query = request.query_string.decode("latin-1")
    head = json.dumps([request.method, request.path, query, media_type])
    return hashlib.sha256(head.encode() + b"\n" + body).hexdigest()
