"""The app served over real HTTP on 127.0.0.1 by Werkzeug's threaded server, one thread per request.

For what the test client cannot show: concurrent requests, a request genuinely in flight while
another arrives, and streamed responses read as they are written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL.

    Leaving the block waits for requests still running: close streamed responses first.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = False  # so server_close() waits for every request thread to finish
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
