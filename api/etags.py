"""Conditional GETs: a strong ETag from the representation's bytes, 304 on a matching If-None-Match."""

from __future__ import annotations

import hashlib

from flask import Response, request


def conditional(response: Response) -> Response:
    """`response` with its ETag, or an empty 304 carrying the same ETag when the client has it.

    If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` and `*` match too. Call it
    only after access checks: a 304 must never tell a stranger that a resource exists.
    """
    etag = hashlib.sha256(response.get_data()).hexdigest()[:32]
    response.cache_control.private = True
    response.cache_control.no_cache = True
    if not request.if_none_match.contains_weak(etag):
        response.set_etag(etag)
        return response
    not_modified = Response(status=304)
    not_modified.set_etag(etag)
    not_modified.headers["Cache-Control"] = response.headers["Cache-Control"]
    return not_modified
