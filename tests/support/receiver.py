"""A real webhook receiver on 127.0.0.1: an HTTP server in a thread that verifies every request with
the `standardwebhooks` library, as a customer's server would, and answers from a script.

Script steps: `Reply(200)`, `Reply(500)`, `Reply(410)`, `Reply(429, {"Retry-After": "1"})`,
`Reply(302, {"Location": other.url()})`, or `HANG` (no answer until the receiver stops). After the
script the receiver answers `default`. `connections` counts accepted TCP connections, so a test can
prove that nothing reached it at all.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.http_server import serving


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


HANG = Reply(status=-1)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: frozenset[str]  # which of the receiver's secrets verified the request

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(
        self,
        *secrets: str,
        script: list[Reply] | None = None,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.secrets = list(secrets)
        self.script = list(script or [])
        self.default = Reply(200)
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", port), _handler(self), self)
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "/hooks", *, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified_by]

    def next_reply(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            return self.script.pop(0) if self.script else self.default

    def verify(self, body: bytes, headers: dict[str, str]) -> frozenset[str]:
        ok = set()
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            ok.add(secret)
        return frozenset(ok)

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def wait_hang(self) -> None:
        self._stop.wait(30)

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        with serving(self._server, stop=self._stop):
            yield self


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, owner: Receiver) -> None:
        super().__init__(address, handler)
        self.owner = owner

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.owner.count_connection()
        return True


def _handler(owner: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(self.path, headers, body, owner.verify(body, headers))
            reply = owner.next_reply(received)
            if reply is HANG:
                owner.wait_hang()
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver(
    *secrets: str,
    script: list[Reply] | None = None,
    tls: ssl.SSLContext | None = None,
    port: int = 0,
) -> Iterator[Receiver]:
    with Receiver(*secrets, script=script, tls=tls, port=port).running() as running:
        yield running
