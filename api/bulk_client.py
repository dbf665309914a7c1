"""`callintel bulk submit`: find or create the batch, upload recordings on a thread pool (streamed from
disk, hashed on the way), add them to the batch in NDJSON groups and close it, resumable.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.bulk_http import Api, ApiError, Cancelled
from api.bulk_sources import Call
from api.bulk_state import BulkState, FileState

CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}

Advance = Callable[..., None]  # advance(files=0, bytes_=0)


@dataclass(frozen=True)
class Options:
    batch: str
    call_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 8
    keep_open: bool = False
    group_size: int = 200


@dataclass
class Outcome:
    batch_id: str | None = None
    added: int = 0
    duplicates: int = 0
    skipped: int = 0  # added by an earlier run (the state file says so)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


@dataclass(frozen=True)
class _Ready:
    """A call ready to be added: its item line and what the state file will say about it."""

    call: Call
    line: dict[str, Any]
    entry: FileState


class _HashingReader(io.RawIOBase):
    """A file read as it is sent: hashed, counted for the progress bar, stopped on cancel."""

    def __init__(self, path: Path, *, advance: Advance, cancelled: threading.Event) -> None:
        self._file = path.open("rb")
        self._advance = advance
        self._cancelled = cancelled
        self.sha256 = hashlib.sha256()
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n: int = self._file.readinto(buffer)
        if n and self._cancelled.is_set():  # at the end it is too late: the server has it all
            raise Cancelled
        self.sha256.update(memoryview(buffer)[:n])
        self.sent += n
        self._advance(bytes_=n)
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class BulkRun:
    """One run of `bulk submit` over local files; `run` returns what happened to each."""

    def __init__(self, api: Api, state: BulkState, options: Options, *, advance: Advance) -> None:
        self.api = api
        self.state = state
        self.options = options
        self.advance = advance
        self.cancelled = api.stop  # set on Ctrl-C: uploads and retry waits in flight end
        self.outcome = Outcome(batch_id=state.batch_id)
        self._lock = threading.Lock()

    def run(self, calls: list[Call]) -> Outcome:
        pending = [c for c in calls if not self._added_before(c)]
        batch = self._open_batch(create=bool(pending))
        if batch is None:
            return self.outcome
        try:
            self._submit(pending)
        finally:
            self.state.save(force=True)
        if not self.options.keep_open:
            self.api.call("POST", f"/v1/batches/{batch}/close")
        return self.outcome

    def _added_before(self, call: Call) -> bool:
        known = self.state.known(call.path)
        if known is None or known.status != "added":
            return False
        self.outcome.skipped += 1
        self.advance(files=1, bytes_=known.size)
        return True

    def _open_batch(self, *, create: bool) -> str | None:
        """The state file's batch while it is open; without a state file, the newest batch of this
        name unless cancelled; else a new one (only when there is something to add).

        Files the state file shows as added are never sent again, so what is left for a closed
        batch of the state file is new content: it goes into a new batch of the same name. A lost
        state file re-sends everything to the newest batch, which answers replayed items (same
        content-derived keys) with their jobs: a night is never submitted twice.
        """
        known = self.state.batch_id is not None
        if known:
            try:
                batch = self.api.call("GET", f"/v1/batches/{self.state.batch_id}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
            else:
                if batch["status"] == "open":
                    return str(batch["id"])
        if not create:
            return None
        batch = None if known else find_batch(self.api, self.options.batch)
        if batch is None or batch["status"] == "cancelled":
            body = {"name": self.options.batch, "metadata": self.options.metadata}
            if self.options.call_type:
                body["call_type"] = self.options.call_type
            batch = self.api.call("POST", "/v1/batches", body=body)
        self.state.set_batch(batch["id"])
        self.outcome.batch_id = batch["id"]
        return str(batch["id"])

    def _submit(self, pending: list[Call]) -> None:
        ready: list[_Ready] = []
        workers = max(1, self.options.concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-upload") as pool:
            # No list of the futures is kept: as_completed lets go of each one it yields, so a
            # night of transcripts is never in memory at once.
            try:
                for future in as_completed([pool.submit(self._prepare, c) for c in pending]):
                    if (done := future.result()) is not None:
                        ready.append(done)
                    if len(ready) >= self.options.group_size:
                        self._add(ready)
                        ready = []
                if ready:
                    self._add(ready)
            except BaseException:
                self.cancelled.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _prepare(self, call: Call) -> _Ready | None:
        """Upload a recording (or read a transcript) into an item line; a failure is recorded."""
        try:
            if self.cancelled.is_set():
                return None
            line, entry = self._upload(call) if call.is_audio else _transcript(call)
        except Cancelled:
            return None
        except (ApiError, OSError, ValueError) as exc:
            self._fail(call.external_id, str(exc))
            return None
        self.advance(files=1, bytes_=0 if call.is_audio else entry.size)
        line.setdefault("external_id", call.external_id)
        line["idempotency_key"] = entry.sha256
        if metadata := {**line.get("metadata", {}), **call.metadata}:
            line["metadata"] = metadata
        if call.call_type:
            line["call_type"] = call.call_type
        return _Ready(call, line, entry)

    def _upload(self, call: Call) -> tuple[dict[str, Any], FileState]:
        known = self.state.known(call.path)
        if known is not None and known.upload_usable():
            self.advance(bytes_=known.size)
            return {"upload_id": known.upload_id}, known
        stat = call.path.stat()
        kind = CONTENT_TYPES[call.path.suffix.lower()]
        announced = {"filename": call.path.name, "content_type": kind, "bytes": stat.st_size}
        upload = self.api.call("POST", "/v1/uploads", body=announced)
        readers: list[_HashingReader] = []

        def open_body() -> _HashingReader:
            if readers:  # a retry: what the last attempt counted is sent again
                self.advance(bytes_=-readers[-1].sent)
            readers.append(
                _HashingReader(call.path, advance=self.advance, cancelled=self.cancelled)
            )
            return readers[-1]

        headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
        self.api.put(upload["url"], headers=headers, open_body=open_body, length=stat.st_size)
        if readers[-1].sent != stat.st_size:
            raise ValueError("the file changed while it was uploaded")
        entry = FileState(
            path=str(call.path),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=readers[-1].sha256.hexdigest(),
            status="uploaded",
            upload_id=upload["id"],
            upload_expires_at=upload.get("expires_at"),
        )
        self.state.record(entry)
        return {"upload_id": entry.upload_id}, entry

    def _add(self, group: list[_Ready]) -> None:
        """POST one NDJSON group of items; map the answer's line numbers (1-based) back to files."""
        body = b"".join(json.dumps(r.line).encode() + b"\n" for r in group)
        batch = self.outcome.batch_id
        try:
            answer = self.api.call("POST", f"/v1/batches/{batch}/items", ndjson=body)
        except ApiError as exc:
            if exc.status == 409:  # the batch was closed or cancelled meanwhile: stop the run
                raise
            for ready in group:
                self._fail(ready.call.external_id, str(exc))
            return
        unanswered = set(range(1, len(group) + 1))
        for item in answer.get("items", []):
            unanswered.discard(int(item["line"]))
            ready = group[int(item["line"]) - 1]
            self.state.added(ready.entry, str(item["job_id"]))
            if item.get("duplicate"):
                self.outcome.duplicates += 1
            else:
                self.outcome.added += 1
        for rejected in answer.get("rejected", []):
            unanswered.discard(int(rejected["line"]))
            ready = group[int(rejected["line"]) - 1]
            self.state.forget(ready.entry)  # e.g. an expired upload: the next run uploads again
            self._fail(ready.call.external_id, f"{rejected.get('code')}: {rejected.get('detail')}")
        for line in sorted(unanswered):
            self._fail(group[line - 1].call.external_id, "the API did not answer for this item")
        self.state.save(force=True)

    def _fail(self, what: str, why: str) -> None:
        with self._lock:
            self.outcome.failures.append((what, why))


def _transcript(call: Call) -> tuple[dict[str, Any], FileState]:
    """A .json job body (it has a "transcript" key) or a .txt transcript as an item line."""
    stat = call.path.stat()
    data = call.path.read_bytes()
    if call.path.suffix.lower() == ".json":
        line = json.loads(data)
        if not isinstance(line, dict) or "transcript" not in line:
            raise ValueError('not a job body: no "transcript" key')
        if not isinstance(line.get("metadata", {}), dict):
            raise ValueError("its metadata is not a JSON object")
    else:
        line = {"transcript": data.decode("utf-8")}
    entry = FileState(
        path=str(call.path),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=hashlib.sha256(data).hexdigest(),
        status="uploaded",
    )
    return line, entry


def find_batch(api: Api, name: str, *, status: str | None = None) -> dict[str, Any] | None:
    """The first batch called `name` (of that status), as the API lists them."""
    query = {"name": name, **({"status": status} if status else {})}
    found: list[dict[str, Any]] = api.call("GET", "/v1/batches", query=query)["data"]
    return found[0] if found else None


def import_prefix(api: Api, options: Options, prefix: str) -> dict[str, Any]:
    """A server-side import of `prefix`: the open batch of this name importing it, else a new one."""
    batch = find_batch(api, options.batch, status="open")
    if batch is not None and (batch.get("source") or {}).get("storage_prefix") == prefix:
        return batch
    body: dict[str, Any] = {
        "name": options.batch,
        "metadata": options.metadata,
        "source": {"storage_prefix": prefix},
    }
    if options.call_type:
        body["call_type"] = options.call_type
    created: dict[str, Any] = api.call("POST", "/v1/batches", body=body)
    return created
