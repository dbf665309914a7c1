"""HTTP for `callintel bulk`: JSON calls to the API, streamed uploads and downloads (stdlib urllib),
retried with exponential backoff and jitter on connection errors, 429 and 5xx, honouring Retry-After.
"""

from __future__ import annotations

import http.client
import io
import json
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

MAX_RETRY_AFTER = 600.0


class Cancelled(Exception):
    """The run was stopped (Ctrl-C): a retry's wait or an upload in flight ends at once."""


class ApiError(Exception):
    """A request that failed for good: a 4xx other than 429, or retries exhausted (status 0 when
    the server could not be reached at all)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date; None when absent or invalid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class Retry:
    """How often and how long to retry. Without `sleep` (a test's, to see the waits) the API
    client waits on its `stop` event, so a Ctrl-C does not wait out a Retry-After."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] | None = None

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's Retry-After when it gave one, else exponential backoff with equal jitter."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        ceiling = min(self.cap, self.base * 2**attempt)
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not crypto


class Api:
    """The Callintel API at `base_url`, authenticated with a bearer key."""

    def __init__(
        self, base_url: str, *, api_key: str, retry: Retry | None = None, timeout: float = 60
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ApiError(0, "invalid_url", f"not an http(s) URL: {base_url}")
        self.base_url = base_url.rstrip("/")
        self.retry = retry or Retry()
        self.stop = threading.Event()  # set: retries stop waiting and raise Cancelled
        self.timeout = timeout
        self._auth = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        ndjson: bytes | None = None,
    ) -> Any:
        """One JSON (or NDJSON) request to the API; the decoded JSON answer."""
        headers = dict(self._auth)
        data: bytes | None = None
        if ndjson is not None:
            data, headers["Content-Type"] = ndjson, "application/x-ndjson"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        url = self._url(path, query)
        with self.send(lambda: _request(method, url, headers, data)) as response:
            return json.loads(response.read() or b"null")

    def stream(self, path: str, *, query: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """A GET whose body the caller reads as it arrives (and closes)."""
        url = self._url(path, query)
        return self.send(lambda: _request("GET", url, {**self._auth, "Accept": "*/*"}, None))

    def put(
        self,
        url: str,
        *,
        headers: dict[str, str],
        open_body: Callable[[], io.RawIOBase],
        length: int,
    ) -> None:
        """PUT a body streamed from `open_body()` (called again on each retry) to an upload URL
        (absolute, or a path on the API); the API key is never sent there."""
        if url.startswith("/"):
            url = self.base_url + url
        sent = {"Content-Type": "application/octet-stream", **headers}
        sent["Content-Length"] = str(length)
        opened: list[io.RawIOBase] = []

        def make() -> urllib.request.Request:
            opened.append(open_body())
            return _request("PUT", url, sent, opened[-1])

        try:
            with self.send(make) as response:
                response.read()
        finally:
            for body in opened:
                body.close()

    def send(self, make: Callable[[], urllib.request.Request]) -> http.client.HTTPResponse:
        """Open `make()`, retrying what may succeed later; raise ApiError for the rest."""
        attempt = 0
        while True:
            try:
                response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310 - scheme checked
                    make(), timeout=self.timeout
                )
                return response
            except urllib.error.HTTPError as exc:
                retryable = exc.code == 429 or exc.code >= 500
                if not retryable or attempt + 1 >= self.retry.attempts:
                    raise _problem(exc) from exc
                wait = self.retry.delay(
                    attempt, retry_after_seconds(exc.headers.get("Retry-After"))
                )
                exc.close()
            except (OSError, http.client.HTTPException) as exc:
                if attempt + 1 >= self.retry.attempts:
                    raise ApiError(0, "connection_error", str(exc)) from exc
                wait = self.retry.delay(attempt, None)
            self._pause(wait)
            attempt += 1

    def _pause(self, seconds: float) -> None:
        if self.retry.sleep is not None:
            self.retry.sleep(seconds)
        elif self.stop.wait(seconds):
            raise Cancelled

    def _url(self, path: str, query: dict[str, str] | None) -> str:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url}{path}{suffix}"


def _request(method: str, url: str, headers: dict[str, str], data: Any) -> urllib.request.Request:
    if not url.startswith(("http://", "https://")):
        raise ApiError(0, "invalid_url", f"not an http(s) URL: {url}")
    return urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310


def _problem(exc: urllib.error.HTTPError) -> ApiError:
    """An error answer as ApiError: its problem+json code and detail when it has them."""
    raw = exc.read()
    exc.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("title") or "http_error")
        detail = str(body.get("detail") or body.get("title") or "")
        return ApiError(exc.code, code, detail)
    return ApiError(exc.code, "http_error", raw.decode(errors="replace")[:200])
