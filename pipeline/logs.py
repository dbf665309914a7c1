"""Logging: one line per event with its context fields, as key=value text or one JSON object.

Context comes from a record's `extra=` fields, else from what `bound()` holds for the running code
(the stage runner binds job, tenant, stage and attempt). Never keys, audio or transcript text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

FIELDS = ("job_id", "tenant_id", "stage", "attempt", "code", "ms", "delivery_id", "state")
LogFormat = Literal["text", "json"]

_bound: ContextVar[dict[str, Any] | None] = ContextVar("callintel_log_context", default=None)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside the block carries `fields` (unless the line sets its own)."""
    token = _bound.set({**(_bound.get() or {}), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The known context fields of `record`, in FIELDS order: its own, else the bound ones."""
    held = _bound.get() or {}
    found = {f: getattr(record, f, held.get(f)) for f in FIELDS}
    return {f: v for f, v in found.items() if v is not None}


class ContextFormatter(logging.Formatter):
    """Appends the context fields as key=value pairs so logs stay greppable."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{f}={v}" for f, v in context_fields(record).items()]
        return f"{line} {' '.join(pairs)}" if pairs else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context fields, and exc if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **context_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: LogFormat, text_format: str = TEXT_FORMAT) -> logging.Formatter:
    """The formatter LOG_FORMAT names; `text_format` is the line layout of the text one."""
    return JsonFormatter() if log_format == "json" else ContextFormatter(text_format)


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Install one handler on the root logger (once per process)."""
    root = logging.getLogger()
    ours = (ContextFormatter, JsonFormatter)
    if any(isinstance(h.formatter, ours) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
