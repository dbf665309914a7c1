"""Serve a stdlib HTTP server on a background thread for the length of a `with` block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer


@contextmanager
def serving(server: BaseServer, *, stop: threading.Event | None = None) -> Iterator[None]:
    """Run `server` until the block ends; then set `stop` (handlers waiting on it return), shut
    the server down and close its socket."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        if stop is not None:
            stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
