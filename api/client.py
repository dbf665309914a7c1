"""A small HTTP client for `callintel submit`: stream a file to the API and poll until it is done."""

from __future__ import annotations

import io
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class _Multipart(io.RawIOBase):
    """A multipart/form-data body read from disk as it is sent, never held in memory whole."""

    def __init__(self, path: Path, boundary: str, *, external_id: str | None) -> None:
        field = ""
        if external_id:
            field = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="external_id"\r\n\r\n'
                f"{external_id}\r\n"
            )
        head = (
            field
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            + f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(tail)
        self._parts: list[io.BufferedIOBase | io.BytesIO] = [
            io.BytesIO(head),
            path.open("rb"),
            io.BytesIO(tail),
        ]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._parts:
            n: int = self._parts[0].readinto(buffer)
            if n:
                return n
            self._parts.pop(0).close()
        return 0


def _request(url: str, *, headers: dict[str, str], data: Any = None) -> urllib.request.Request:
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"not an http(s) URL: {url}")
    return urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - scheme checked


def _call(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the user's own API URL
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{exc.code}: {exc.read().decode(errors='replace')}") from exc


def submit_file(
    path_str: str, *, base_url: str, api_key: str, wait: bool, external_id: str | None = None
) -> str:
    """POST a recording (multipart), a JSON body (.json) or a plain-text transcript (.txt)."""
    path = Path(path_str)
    headers = {"Authorization": f"Bearer {api_key}"}
    if path.suffix in (".json", ".txt"):
        body = (
            json.loads(path.read_bytes())
            if path.suffix == ".json"
            else {"transcript": path.read_text()}
        )
        if external_id:
            body["external_id"] = external_id
        data: Any = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    else:
        boundary = secrets.token_hex(16)
        data = _Multipart(path, boundary, external_id=external_id)
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        headers["Content-Length"] = str(data.length)
    job = _call(_request(f"{base_url}/v1/jobs", data=data, headers=headers))
    while wait and job["status"] not in ("completed", "failed"):
        time.sleep(1)
        job = _call(_request(f"{base_url}{job['links']['self']}", headers=headers))
    if wait and job["status"] == "completed":
        result = _call(_request(f"{base_url}{job['links']['result']}", headers=headers))
        return json.dumps(result, indent=2)
    return json.dumps(job, indent=2)
