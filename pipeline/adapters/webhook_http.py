"""The webhook sender: Standard Webhooks signing, SSRF-checked and pinned connections, no redirects.

The host is resolved once through an injectable resolver, every address is judged by the SSRF
policy, and urllib3 then connects to a checked address itself, with the name kept for the Host
header, SNI and certificate verification. Resolving again at connect time (as requests would) would
let DNS answer differently after the check. urllib3 reads no proxy variables and follows no redirect
here; the response body is read only up to a cap. urllib3's errors become DeliveryFailed codes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import urllib3
from standardwebhooks import Webhook
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from pipeline.settings import Settings
from pipeline.webhooks.errors import DeliveryFailed
from pipeline.webhooks.ports import WebhookRequest, WebhookResponse
from pipeline.webhooks.schedule import parse_retry_after
from pipeline.webhooks.ssrf import (
    IPAddress,
    Resolver,
    Target,
    UrlPolicy,
    parse_url,
    resolve,
    system_resolver,
)

USER_AGENT = "Callintel-Webhooks/1.0"
MAX_ADDRESSES = 3  # connect attempts per send, each to a checked address
# Most specific first: NewConnectionError is a ConnectTimeoutError, ReadTimeoutError an HTTPError.
_TRANSLATIONS: tuple[tuple[type[BaseException], str], ...] = (
    (SSLError, "tls_error"),
    (ReadTimeoutError, "timeout"),
    (NewConnectionError, "connect_error"),
    (ConnectTimeoutError, "connect_timeout"),
    (ProtocolError, "connection_error"),
    (HTTPError, "http_error"),
    (TimeoutError, "timeout"),
    (OSError, "connect_error"),
)


def translate(exc: BaseException) -> DeliveryFailed:
    """Our error for a vendor (or socket) error met while sending."""
    code = next((c for kind, c in _TRANSLATIONS if isinstance(exc, kind)), "http_error")
    return DeliveryFailed(f"{code}: {type(exc).__name__}", code=code)


def sign(request: WebhookRequest) -> dict[str, str]:
    """The three Standard Webhooks headers; every secret signs (space-separated) during a rotation."""
    signatures = [
        Webhook(s).sign(request.msg_id, request.timestamp, request.body) for s in request.secrets
    ]
    return {
        "webhook-id": request.msg_id,
        "webhook-timestamp": str(int(request.timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


@dataclass
class HttpWebhookSender:
    policy: UrlPolicy
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 30.0  # the whole attempt: a receiver dripping bytes meets this one
    response_cap_bytes: int = 4096
    resolver: Resolver = field(default=system_resolver)
    ca_certs: str | None = None  # None: the system's trust store (tests pass their own CA)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, resolver: Resolver = system_resolver
    ) -> HttpWebhookSender:
        return cls(
            policy=UrlPolicy.from_settings(settings),
            connect_timeout_s=settings.webhook_connect_timeout_s,
            read_timeout_s=settings.webhook_read_timeout_s,
            total_timeout_s=settings.webhook_total_timeout_s,
            response_cap_bytes=settings.webhook_response_cap_bytes,
            resolver=resolver,
        )

    def send(self, request: WebhookRequest) -> WebhookResponse:
        """See pipeline.webhooks.ports.WebhookSender.send."""
        target = parse_url(request.url, self.policy)
        addresses = resolve(target, self.policy, self.resolver)  # each one checked
        headers = {**sign(request), **self._headers(target)}
        body = request.body.encode()
        began = time.perf_counter()
        *others, last = addresses[:MAX_ADDRESSES]
        for ip in others:
            try:
                return self._post(target, ip, headers, body, began)
            except (NewConnectionError, ConnectTimeoutError):
                continue  # this address is down: try the next checked one
            except (HTTPError, OSError) as exc:
                raise translate(exc) from exc
        try:
            return self._post(target, last, headers, body, began)
        except (HTTPError, OSError) as exc:
            raise translate(exc) from exc

    def _headers(self, target: Target) -> dict[str, str]:
        host = f"[{target.host}]" if ":" in target.host else target.host
        default = 443 if target.scheme == "https" else 80
        return {
            "Host": host if target.port == default else f"{host}:{target.port}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }

    def _post(
        self, target: Target, ip: IPAddress, headers: dict[str, str], body: bytes, began: float
    ) -> WebhookResponse:
        pool = self._pool(target, ip)
        watchdog = threading.Timer(self.total_timeout_s, _abort, args=(pool,))
        watchdog.daemon = True
        watchdog.start()
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                latency_ms = int((time.perf_counter() - began) * 1000)
                excerpt = self._excerpt(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if pool.aborted:  # a cut-off exchange can look complete: it never counts
                    raise DeliveryFailed("timeout: the attempt's total deadline", code="timeout")
                return WebhookResponse(response.status, latency_ms, excerpt, retry_after)
            finally:
                response.close()
        except (HTTPError, OSError) as exc:
            if pool.aborted:  # the watchdog cut the connection: the attempt ran out of time
                raise DeliveryFailed(
                    "timeout: the attempt's total deadline", code="timeout"
                ) from exc
            raise
        finally:
            watchdog.cancel()
            pool.close()

    def _pool(self, target: Target, ip: IPAddress) -> _TrackedHTTP:
        """A one-connection pool to the checked address; the name is used only for Host/SNI/TLS."""
        address = str(ip)
        timeout = urllib3.Timeout(connect=self.connect_timeout_s, read=self.read_timeout_s)
        if target.scheme == "https":
            return _TrackedHTTPS(
                address,
                target.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_certs,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        return _TrackedHTTP(address, target.port, timeout=timeout, maxsize=1, retries=False)

    def _excerpt(self, response: urllib3.BaseHTTPResponse) -> str:
        """At most `response_cap_bytes` of the body, and only while the read timeout allows."""
        try:
            data = response.read(self.response_cap_bytes, decode_content=False)
        except (HTTPError, OSError):
            return ""  # the status already arrived; a broken body does not change the outcome
        text = data[: self.response_cap_bytes].decode("utf-8", errors="replace")
        return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL


class _TrackedHTTP(urllib3.HTTPConnectionPool):
    """A pool that remembers the connection it handed out, so a watchdog can cut it off.

    urllib3's timeouts bound each socket read, not the whole exchange: a receiver that sends one
    byte every few seconds would otherwise hold a delivery thread indefinitely.
    """

    in_use: Any = None
    aborted = False

    def _get_conn(self, timeout: float | None = None) -> Any:
        self.in_use = super()._get_conn(timeout)
        return self.in_use


class _TrackedHTTPS(_TrackedHTTP, urllib3.HTTPSConnectionPool):
    pass


def _abort(pool: _TrackedHTTP) -> None:
    """Shut the in-flight connection's socket down: the blocked read fails at once."""
    pool.aborted = True  # before the shutdown: the failing read must see it
    sock = getattr(pool.in_use, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
