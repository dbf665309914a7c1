"""The resume file of `callintel bulk submit`: the batch id and, per file, its upload and job, written
atomically (temporary file + rename) so an interrupted run can pick up where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

VERSION = 1
SAVE_EVERY_S = 0.5  # at most this much finished work is lost to a hard crash (kill -9)

Status = Literal["uploaded", "added"]


class StateError(Exception):
    pass


@dataclass
class FileState:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: Status
    upload_id: str | None = None
    upload_expires_at: str | None = None
    job_id: str | None = None

    def unchanged(self, path: Path) -> bool:
        try:
            stat = path.stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns)

    def upload_usable(self, *, now: datetime | None = None) -> bool:
        """An upload id that has not expired (the API keeps an upload only for a while)."""
        if self.upload_id is None:
            return False
        if self.upload_expires_at is None:
            return True
        try:
            expires = datetime.fromisoformat(self.upload_expires_at.replace("Z", "+00:00"))
        except ValueError:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires > (now or datetime.now(UTC))


def default_state_path(batch: str) -> Path:
    """`.callintel-bulk-<batch name>.json` in the current directory (the name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", batch).strip("._") or "batch"
    return Path.cwd() / f".callintel-bulk-{safe}.json"


class BulkState:
    """Thread-safe: upload workers record into it while the main thread records added items."""

    def __init__(self, path: Path, *, batch: str) -> None:
        self.path = path
        self.batch = batch
        self.batch_id: str | None = None
        self.files: dict[str, FileState] = {}
        self._lock = threading.Lock()
        self._saved_at = 0.0
        self._dirty = False

    @classmethod
    def load(cls, path: Path, *, batch: str) -> BulkState:
        """The state at `path`, or an empty one when there is no file yet."""
        state = cls(path, batch=batch)
        if not path.exists():
            return state
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("batch") != batch:
                raise StateError(f"{path} belongs to batch {raw.get('batch')!r}, not {batch!r}")
            state.batch_id = raw.get("batch_id")
            state.files = {f["path"]: FileState(**f) for f in raw.get("files", [])}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StateError(f"{path} is not a bulk state file: {exc}") from exc
        return state

    def known(self, path: Path) -> FileState | None:
        """What an earlier run did with `path`, unless the file changed since."""
        with self._lock:
            entry = self.files.get(str(path))
        return entry if entry is not None and entry.unchanged(path) else None

    def record(self, entry: FileState) -> None:
        with self._lock:
            self.files[entry.path] = entry
            self._dirty = True
        self.save()

    def added(self, entry: FileState, job_id: str) -> None:
        with self._lock:
            entry.status, entry.job_id = "added", job_id
            self.files[entry.path] = entry
            self._dirty = True

    def forget(self, entry: FileState) -> None:
        with self._lock:
            if self.files.pop(entry.path, None) is not None:
                self._dirty = True

    def set_batch(self, batch_id: str) -> None:
        with self._lock:
            self.batch_id = batch_id
            self._dirty = True
        self.save(force=True)

    def save(self, *, force: bool = False) -> None:
        """Write the file (atomically) when something changed and it was not written just now."""
        with self._lock:
            if not self._dirty or (not force and time.monotonic() - self._saved_at < SAVE_EVERY_S):
                return
            body = {
                "version": VERSION,
                "batch": self.batch,
                "batch_id": self.batch_id,
                "files": [asdict(f) for f in self.files.values()],
            }
            _write_atomically(self.path, json.dumps(body, indent=1))
            self._saved_at, self._dirty = time.monotonic(), False


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
