"""What `callintel bulk` shows: the upload progress bar on stderr (only on a terminal), a batch's
status, the watch loop and the final summary of a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from api.bulk_client import Outcome
from api.bulk_http import Api

FINISHED = ("completed", "cancelled")


class UploadProgress:
    """Files done/total, bytes/s and ETA on stderr; nothing at all when stderr is not a terminal."""

    def __init__(self, *, files: int, total_bytes: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._files, self._done = files, 0
        self._lock = threading.Lock()
        self._bar = Progress(
            TextColumn("{task.fields[files]}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self._task = self._bar.add_task("upload", total=max(total_bytes, 1), files=self._label())

    def advance(self, *, files: int = 0, bytes_: int = 0) -> None:
        with self._lock:
            self._done += files
            self._bar.update(self._task, advance=bytes_, files=self._label())

    def _label(self) -> str:
        return f"{self._done}/{self._files} files"

    def __enter__(self) -> UploadProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()


def summary(outcome: Outcome, problems: list[str]) -> list[str]:
    """The lines printed at the end of `bulk submit`."""
    failed = len(outcome.failures) + len(problems)
    lines = [
        f"added {outcome.added}, duplicates {outcome.duplicates}, "
        f"skipped {outcome.skipped} (added by an earlier run), failed {failed}, "
        f"batch {outcome.batch_id or '-'}"
    ]
    lines += [f"  failed: {what}: {why}" for what, why in outcome.failures]
    lines += [f"  failed: {problem}" for problem in problems]
    return lines


def describe(batch: dict[str, Any]) -> list[str]:
    """A batch's counts, progress, rate, ETA and failures, a few lines of text."""
    counts = batch.get("counts") or {}
    done = sum(int(counts.get(k, 0)) for k in ("completed", "failed", "cancelled"))
    progress = float(batch.get("progress") or 0.0)
    lines = [
        f"{batch['id']}  {batch.get('name', '')}  {batch['status']}  "
        f"{progress:.0%} ({done}/{counts.get('total', 0)})",
        "  " + "  ".join(f"{k} {counts.get(k, 0)}" for k in _COUNTS),
    ]
    rate, eta = batch.get("items_per_s"), batch.get("eta_s")
    if rate is not None or eta is not None:
        lines.append(f"  {rate or 0:.1f} items/s, ETA {_duration(eta)}")
    if failures := batch.get("failures") or []:
        lines.append("  failures: " + ", ".join(f"{f['code']} x{f['count']}" for f in failures))
    return lines


_COUNTS = ("total", "backlog", "running", "completed", "failed", "cancelled")


def watch(
    api: Api,
    batch_id: str,
    *,
    interval: float,
    echo: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Print the batch every `interval` seconds (when it changed) until it is completed or
    cancelled; the last state."""
    shown: list[str] = []
    while True:
        batch: dict[str, Any] = api.call("GET", f"/v1/batches/{batch_id}")
        lines = describe(batch)
        if lines != shown:
            echo("\n".join(lines))
            shown = lines
        if batch["status"] in FINISHED:
            return batch
        sleep(interval)


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    total = int(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
