"""Logging: one line per event with its context fields. Never keys, audio or transcript text at INFO."""

from __future__ import annotations

import logging

_FIELDS = ("job_id", "stage", "code", "ms", "tenant_id")


class ContextFormatter(logging.Formatter):
    """Appends the known `extra=` fields as key=value pairs so logs stay greppable."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{f}={getattr(record, f)}" for f in _FIELDS if hasattr(record, f)]
        return f"{line} {' '.join(pairs)}" if pairs else line


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, ContextFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
