"""The worker's Context (engine, blob store, providers), built lazily once per process after fork."""

from __future__ import annotations

import os

from celery.signals import worker_process_init

from pipeline.context import Context, build_context
from pipeline.settings import get_settings

_context: tuple[int, Context] | None = None


def worker_context() -> Context:
    """This process's Context; a forked child never reuses its parent's pooled connections."""
    global _context  # noqa: PLW0603 - a per-process cache, keyed by pid
    if _context is None or _context[0] != os.getpid():
        _context = (os.getpid(), build_context(get_settings()))
    return _context[1]


@worker_process_init.connect
def _reset_after_fork(**_kwargs: object) -> None:
    global _context  # noqa: PLW0603
    _context = None
