"""An in-memory stand-in for the batch API (batches, uploads, NDJSON items, results) served over real
HTTP by tests/support/fake_batch_server.py, to the contract `callintel bulk` codes against. It stands
in until the integration test against the real API (whose batch endpoints are on another branch).

Faults are scripted: `fail("POST", "/v1/uploads", 429, {"Retry-After": "1"})` answers the next
matching request so; `reject_files` refuses some uploads by file name; `after_put` runs inside each
completed upload (before its answer), `on_request` before any answer; `complete_per_poll` finishes that many jobs of a closed batch
at each GET of it, so a watcher sees the batch progress and complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

API_KEY = "ck_test_bulk"


@dataclass
class Fault:
    method: str
    path: str  # a prefix of the request path
    status: int
    headers: dict[str, str]


@dataclass
class Upload:
    id: str
    filename: str
    signature: str
    data: bytes | None = None


@dataclass
class FakeBatchApi:
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (batch id, idempotency_key) -> job id: keys are unique within a batch, as in the real API
    by_key: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), answered or not
    faults: list[Fault] = field(default_factory=list)
    reject_files: dict[str, int] = field(default_factory=dict)  # upload filename -> status
    storage: dict[str, list[str]] = field(default_factory=dict)  # s3 prefix -> object keys
    after_put: Callable[[int], None] | None = None  # called with the number of completed PUTs
    on_request: Callable[[str, str], None] | None = None  # called with (method, path) first
    complete_per_poll: int = 0
    relative_upload_urls: bool = False  # answer the API's own upload URL as a path
    puts: int = 0
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self, method: str, path: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        self.faults.append(Fault(method, path, status, headers or {}))

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path))

    def jobs_of(self, batch_id: str) -> list[dict[str, Any]]:
        return [j for j in self.jobs.values() if j["batch_id"] == batch_id]

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{len(self.batches) + len(self.uploads) + len(self.jobs) + 1:06d}"

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and path.startswith(fault.path):
                self.faults.remove(fault)
                return fault
        return None


class Answer(Exception):
    """Raised by a route to answer with a problem (or any status and body)."""

    def __init__(
        self, status: int, code: str = "", detail: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}


def _batch(api: FakeBatchApi, batch_id: str) -> dict[str, Any]:
    batch = api.batches.get(batch_id)
    if batch is None:
        raise Answer(404, "not_found", f"no batch {batch_id}")
    counts = {k: 0 for k in ("backlog", "running", "completed", "failed", "cancelled")}
    for job in api.jobs_of(batch_id):
        counts[job["status"]] += 1
    total = sum(counts.values())
    done = counts["completed"] + counts["failed"] + counts["cancelled"]
    if batch["status"] == "closed" and total and done == total:
        batch["status"] = "completed"
    return {
        **batch,
        "counts": {"total": total, **counts},
        "progress": done / total if total else 0.0,
        "items_per_s": 1.5,
        "eta_s": (total - done) / 1.5,
        "failures": [{"code": "asr_failed", "count": counts["failed"]}] if counts["failed"] else [],
        "links": {
            "self": f"/v1/batches/{batch_id}",
            "results": f"/v1/batches/{batch_id}/results",
            "jobs": f"/v1/jobs?batch={batch_id}",
        },
    }


def create_batch(api: FakeBatchApi, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise Answer(422, "validation_error", "name is required")
    batch_id = api.next_id("bat")
    api.batches[batch_id] = {
        "object": "batch",
        "id": batch_id,
        "name": body["name"],
        "status": "open",
        "call_type": body.get("call_type"),
        "metadata": body.get("metadata") or {},
        "source": body.get("source"),
        "created_at": "2026-12-04T22:00:00Z",
        "closed_at": None,
        "started_at": None,
        "finished_at": None,
    }
    prefix = (body.get("source") or {}).get("storage_prefix")
    if prefix is not None:
        for key in api.storage.get(prefix, []):
            _new_job(api, batch_id, {"key": key, "external_id": key})
        api.batches[batch_id]["status"] = "closed"
    return 201, _batch(api, batch_id)


def list_batches(api: FakeBatchApi, query: dict[str, str]) -> tuple[int, Any]:
    found = [
        _batch(api, b["id"])
        for b in reversed(list(api.batches.values()))
        if b["name"] == query.get("name", b["name"])
    ]
    found = [b for b in found if b["status"] == query.get("status", b["status"])]
    return 200, {"object": "list", "data": found, "has_more": False, "next_cursor": None}


def get_batch(api: FakeBatchApi, batch_id: str) -> tuple[int, Any]:
    if api.batches.get(batch_id, {}).get("status") == "closed":
        backlog = [j for j in api.jobs_of(batch_id) if j["status"] == "backlog"]
        for job in backlog[: api.complete_per_poll]:
            job["status"] = "completed"
    return 200, _batch(api, batch_id)


def create_upload(api: FakeBatchApi, body: Any) -> tuple[int, Any]:
    filename = str((body or {}).get("filename", ""))
    if filename in api.reject_files:
        raise Answer(api.reject_files[filename], "unsupported_media", f"{filename} is refused")
    upload_id = api.next_id("upl")
    signature = hashlib.sha256(upload_id.encode()).hexdigest()[:16]
    api.uploads[upload_id] = Upload(upload_id, filename, signature)
    return 201, {
        "object": "upload",
        "id": upload_id,
        "url": f"{'' if api.relative_upload_urls else api.base_url}/_uploads/{upload_id}?sig={signature}",
        "method": "PUT",
        "headers": {"Content-Type": "application/octet-stream", "X-Upload-Signature": signature},
        "expires_at": "2099-01-01T00:00:00Z",
    }


def add_items(api: FakeBatchApi, batch_id: str, body: bytes) -> tuple[int, Any]:
    batch = _batch(api, batch_id)
    is_open = batch["status"] == "open"
    accepted, duplicates, rejected, items = 0, 0, [], []
    for number, raw in enumerate(body.decode().split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = _item(api, json.loads(raw))
        except (ValueError, Answer) as exc:
            code = exc.code if isinstance(exc, Answer) else "invalid_json"
            detail = exc.detail if isinstance(exc, Answer) else str(exc)
            rejected.append({"line": number, "code": code, "detail": detail})
            continue
        key = item.get("idempotency_key")
        if key is not None and (batch_id, key) in api.by_key:
            duplicates += 1
            items.append({"line": number, "job_id": api.by_key[batch_id, key], "duplicate": True})
            continue
        if not is_open:  # like the real API: replays are answered, new items refused
            if not items and not rejected and number == 1:
                raise Answer(409, "batch_not_open", f"batch {batch_id} is {batch['status']}")
            rejected.append({"line": number, "code": "batch_not_open", "detail": "closed"})
            continue
        accepted += 1
        items.append({"line": number, "job_id": _new_job(api, batch_id, item), "duplicate": False})
    answer = {"object": "batch_items", "accepted": accepted, "duplicates": duplicates}
    return 200, {**answer, "rejected": rejected, "items": items, "batch": _batch(api, batch_id)}


def _item(api: FakeBatchApi, item: Any) -> dict[str, Any]:
    if (
        not isinstance(item, dict)
        or sum(k in item for k in ("upload_id", "key", "transcript")) != 1
    ):
        raise Answer(422, "invalid_item", "one of upload_id, key, transcript")
    if "upload_id" in item:
        upload = api.uploads.get(item["upload_id"])
        if upload is None or upload.data is None:
            raise Answer(422, "upload_not_found", f"no completed upload {item['upload_id']}")
    return item


def _new_job(api: FakeBatchApi, batch_id: str, item: dict[str, Any]) -> str:
    job_id = api.next_id("job")
    api.jobs[job_id] = {**item, "id": job_id, "batch_id": batch_id, "status": "backlog"}
    if item.get("idempotency_key") is not None:
        api.by_key[batch_id, item["idempotency_key"]] = job_id
    return job_id


def set_status(api: FakeBatchApi, batch_id: str, action: str) -> tuple[int, Any]:
    batch = api.batches.get(batch_id)
    if batch is None:
        raise Answer(404, "not_found", f"no batch {batch_id}")
    if action == "close" and batch["status"] == "open":
        batch["status"] = "closed"
    elif action == "cancel" and batch["status"] in ("open", "closed"):
        batch["status"] = "cancelled"
    return 200, _batch(api, batch_id)


def results(api: FakeBatchApi, batch_id: str, fmt: str) -> Iterator[bytes]:
    """The batch's results one row at a time, as the real endpoint streams them."""
    jobs = api.jobs_of(batch_id)
    if fmt == "csv":
        yield b"job_id,external_id,status\r\n"
    for job in jobs:
        if fmt == "csv":
            out = io.StringIO()
            csv.writer(out).writerow([job["id"], job.get("external_id", ""), job["status"]])
            yield out.getvalue().encode()
        else:
            row = {
                "job_id": job["id"],
                "external_id": job.get("external_id"),
                "status": job["status"],
            }
            yield json.dumps(row).encode() + b"\n"
