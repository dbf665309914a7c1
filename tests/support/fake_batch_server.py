"""The fake batch API (tests/support/fake_batches.py) on a real HTTP server on 127.0.0.1: routing,
authentication, the signed upload URL, injected faults and streamed results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_batches import (
    API_KEY,
    Answer,
    FakeBatchApi,
    add_items,
    create_batch,
    create_upload,
    get_batch,
    list_batches,
    results,
    set_status,
)
from tests.support.http_server import serving

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/v1/batches"), "list"),
    ("POST", re.compile(r"/v1/batches"), "create"),
    ("GET", re.compile(r"/v1/batches/(bat_\w+)"), "get"),
    ("POST", re.compile(r"/v1/batches/(bat_\w+)/items"), "items"),
    ("POST", re.compile(r"/v1/batches/(bat_\w+)/(close|cancel|retry-failed)"), "status"),
    ("GET", re.compile(r"/v1/batches/(bat_\w+)/results"), "results"),
    ("POST", re.compile(r"/v1/uploads"), "upload"),
]


def _route(api: FakeBatchApi, method: str, path: str, query: dict[str, str], body: bytes) -> Any:
    for verb, pattern, name in ROUTES:
        match = pattern.fullmatch(path)
        if verb != method or match is None:
            continue
        args = match.groups()
        if name == "items":
            return add_items(api, args[0], body)
        if name == "results":
            return 200, results(api, args[0], query.get("format", "jsonl"))
        if name == "status":
            return set_status(api, args[0], args[1])
        if name == "get":
            return get_batch(api, args[0])
        if name == "list":
            return list_batches(api, query)
        parsed = json.loads(body) if body else None
        return create_batch(api, parsed) if name == "create" else create_upload(api, parsed)
    raise Answer(404, "not_found", f"no route {method} {path}")


def _put(
    api: FakeBatchApi, upload_id: str, query: dict[str, str], headers: Any, body: bytes | None
) -> tuple[int, Any]:
    """The signed upload URL: no API key, the signature in the URL and the returned header."""
    upload = api.uploads.get(upload_id)
    if upload is None:
        raise Answer(404, "not_found", f"no upload {upload_id}")
    if headers.get("Authorization") is not None:
        raise Answer(400, "api_key_sent", "an upload URL must not be sent the API key")
    if (
        query.get("sig") != upload.signature
        or headers.get("X-Upload-Signature") != upload.signature
    ):
        raise Answer(403, "bad_signature", "signature mismatch")
    if body is None:
        raise Answer(400, "incomplete_body", "the body ended before Content-Length")
    upload.data = body
    api.puts += 1
    if api.after_put is not None:
        api.after_put(api.puts)
    return 200, {}


def _dispatch(api: FakeBatchApi, method: str, url: str, headers: Any, body: bytes | None) -> Any:
    """Answer one request (under the fake's lock): an injected fault, an upload PUT, or a route."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    with api.lock:
        api.requests.append((method, parts.path))
        if api.on_request is not None:
            api.on_request(method, parts.path)
        fault = api.take_fault(method, parts.path)
        if fault is not None:
            raise Answer(fault.status, "injected", "an injected fault", fault.headers)
        if method == "PUT" and parts.path.startswith("/_uploads/"):
            return _put(api, parts.path.removeprefix("/_uploads/"), query, headers, body)
        if headers.get("Authorization") != f"Bearer {API_KEY}":
            raise Answer(401, "unauthorized", "a valid API key is required")
        is_items = method == "POST" and parts.path.endswith("/items")
        if is_items and headers.get("Content-Type") != "application/x-ndjson":
            raise Answer(415, "unsupported_media_type", "items are NDJSON")
        return _route(api, method, parts.path, query, body or b"")


def _handler(api: FakeBatchApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            body = self._body()
            try:
                status, answer = _dispatch(api, method, self.path, self.headers, body)
            except Answer as exc:
                self._problem(exc)
                return
            if isinstance(answer, Iterator):
                self._stream(status, answer)
            else:
                self._send(status, "application/json", json.dumps(answer).encode())

        def _body(self) -> bytes | None:
            """The whole body, or None when the client went away before sending all of it."""
            expected = int(self.headers.get("Content-Length", "0"))
            chunks, got = [], 0
            while got < expected:
                chunk = self.rfile.read(min(65536, expected - got))
                if not chunk:
                    return None
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)

        def _problem(self, exc: Answer) -> None:
            body = {
                "type": f"https://callintel.dev/problems/{exc.code}",
                "title": exc.code,
                "status": exc.status,
                "code": exc.code,
                "detail": exc.detail,
            }
            self._send(
                exc.status, "application/problem+json", json.dumps(body).encode(), exc.headers
            )

        def _send(
            self, status: int, kind: str, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            try:
                self.send_response(status)
                for name, value in {"Content-Type": kind, **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client is gone (an interrupted upload)

        def _stream(self, status: int, chunks: Iterator[bytes]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()  # no length: HTTP/1.0, the body ends when the connection closes
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_batch_api() -> Iterator[FakeBatchApi]:
    """A running fake; its `base_url` is where to point `--url`."""
    api = FakeBatchApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield api
