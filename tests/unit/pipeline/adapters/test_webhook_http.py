"""The HTTP sender against a real verifying receiver: signatures, no redirects, timeouts, the body
cap, the SSRF policy at connect time (zero connections), and connections pinned to checked addresses."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import urllib3.exceptions
from standardwebhooks import Webhook

from pipeline.adapters.webhook_http import HttpWebhookSender, translate
from pipeline.webhooks.endpoints import new_secret
from pipeline.webhooks.errors import DeliveryFailed, InvalidWebhookUrl, UnsafeWebhookUrl
from pipeline.webhooks.ports import WebhookRequest
from pipeline.webhooks.ssrf import UrlPolicy
from tests.support.receiver import HANG, Reply, receiver
from tests.support.services import free_port
from tests.support.tls import make_certificate

LOOPBACK_OK = UrlPolicy(allow_http=True, allow_loopback=True)
STRICT_HTTP = UrlPolicy(allow_http=True)  # plain http allowed, loopback not: the SSRF guard is on
SECRET = new_secret()


class CountingResolver:
    """A DNS we control: answers from a table, and counts lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table, self.calls = table, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        if host not in self.table:
            raise OSError(f"NXDOMAIN {host}")
        return self.table[host]


def request(url: str, *secrets: str, msg_id: str = "msg_test1") -> WebhookRequest:
    body = json.dumps({"type": "job.completed", "id": "evt_1", "data": {"job_id": "job_1"}})
    return WebhookRequest(msg_id, url, body, secrets or (SECRET,), datetime.now(UTC))


def sender(policy: UrlPolicy = LOOPBACK_OK, **options: object) -> HttpWebhookSender:
    values: dict[str, object] = {"connect_timeout_s": 2.0, "read_timeout_s": 2.0, **options}
    return HttpWebhookSender(policy=policy, **values)  # type: ignore[arg-type]


def test_a_delivery_verifies_with_the_standardwebhooks_library() -> None:
    with receiver(SECRET) as hook:
        response = sender().send(request(hook.url("/in?x=1")))
    assert response.status == 200 and response.excerpt == "ok" and response.latency_ms >= 0
    (got,) = hook.received
    assert got.verified_by == {SECRET}
    assert got.path == "/in?x=1"
    assert got.webhook_id == "msg_test1"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.payload["data"] == {"job_id": "job_1"}
    Webhook(SECRET).verify(got.body, got.headers)  # and exactly as a customer would call it


def test_during_rotation_both_secrets_sign() -> None:
    old, new = new_secret(), new_secret()
    with receiver(old, new) as hook:
        sender().send(request(hook.url(), new, old))
    (got,) = hook.received
    assert got.verified_by == {old, new}
    assert len(got.headers["webhook-signature"].split(" ")) == 2


def test_a_wrong_secret_does_not_verify() -> None:
    with receiver(SECRET) as hook:
        sender().send(request(hook.url(), new_secret()))
    assert hook.received and not hook.verified


def test_redirects_are_never_followed() -> None:
    with receiver(SECRET) as target, receiver(SECRET) as hook:
        hook.script = [Reply(302, {"Location": target.url()})]
        response = sender().send(request(hook.url()))
    assert response.status == 302
    assert target.connections == 0 and target.received == []


def test_a_hanging_receiver_is_cut_off_by_the_read_timeout() -> None:
    with receiver(SECRET, script=[HANG]) as hook:
        with pytest.raises(DeliveryFailed) as caught:
            sender(read_timeout_s=0.5).send(request(hook.url()))
        assert len(hook.received) == 1  # it got the request and never answered
    assert caught.value.code == "timeout"


def test_the_response_body_is_read_only_up_to_the_cap() -> None:
    with receiver(SECRET, script=[Reply(500, body=b"x" * 1_000_000)]) as hook:
        response = sender(response_cap_bytes=4096).send(request(hook.url()))
    assert response.status == 500
    assert len(response.excerpt) == 4096


def test_a_binary_answer_is_logged_as_storable_text() -> None:
    with receiver(SECRET, script=[Reply(400, body=b"\x00\xff\x01 nope")]) as hook:
        response = sender().send(request(hook.url()))
    assert response.excerpt == "\ufffd\ufffd\x01 nope"


def test_retry_after_is_reported() -> None:
    with receiver(SECRET, script=[Reply(429, {"Retry-After": "17"})]) as hook:
        response = sender().send(request(hook.url()))
    assert (response.status, response.retry_after_s) == (429, 17)


def test_nothing_listening_is_a_connect_error() -> None:
    with pytest.raises(DeliveryFailed) as caught:
        sender().send(request(f"http://127.0.0.1:{free_port()}/hooks"))
    assert caught.value.code == "connect_error"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "localhost",
        "rebound.example.test",  # a name whose DNS answer is loopback
    ],
)
def test_ssrf_forms_make_zero_connections(host: str) -> None:
    resolver = CountingResolver({"rebound.example.test": ["127.0.0.1"]})
    with receiver(SECRET) as hook:
        url = f"http://{host}:{hook.port}/hooks"
        with pytest.raises(UnsafeWebhookUrl):
            sender(STRICT_HTTP, resolver=resolver).send(request(url))
    assert hook.connections == 0


def test_one_refused_address_among_several_refuses_the_host() -> None:
    resolver = CountingResolver({"mixed.example.test": ["127.0.0.1", "10.0.0.7"]})
    with receiver(SECRET) as hook, pytest.raises(UnsafeWebhookUrl, match=r"10\.0\.0\.7"):
        sender(resolver=resolver).send(request(f"http://mixed.example.test:{hook.port}/"))
    assert hook.connections == 0


def test_the_connection_is_pinned_to_the_address_resolved_once() -> None:
    resolver = CountingResolver({"hooks.example.test": ["127.0.0.1"]})
    with receiver(SECRET) as hook:
        response = sender(resolver=resolver).send(
            request(f"http://hooks.example.test:{hook.port}/in")
        )
    assert response.status == 200
    assert resolver.calls == 1  # checked and connected from one answer: no second lookup
    (got,) = hook.received
    assert got.headers["host"] == f"hooks.example.test:{hook.port}"  # the name, kept for the app


def test_an_address_that_is_down_falls_through_to_the_next_checked_one() -> None:
    resolver = CountingResolver({"two.example.test": ["127.0.0.2", "127.0.0.1"]})
    with receiver(SECRET) as hook:  # listens on 127.0.0.1 only
        response = sender(resolver=resolver).send(request(f"http://two.example.test:{hook.port}/"))
    assert response.status == 200


def test_an_unresolvable_name_sends_nothing() -> None:
    with pytest.raises(InvalidWebhookUrl):
        sender(resolver=CountingResolver({})).send(request("http://gone.example.test/"))


def test_https_pins_the_address_and_verifies_the_certificate_for_the_name(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, "hooks.example.test")
    resolver = CountingResolver(
        {"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]}
    )
    tls_sender = sender(
        UrlPolicy(allow_loopback=True), resolver=resolver, ca_certs=str(cert.ca_file)
    )
    with receiver(SECRET, tls=cert.server_context) as hook:
        response = tls_sender.send(request(f"https://hooks.example.test:{hook.port}/in"))
        assert response.status == 200 and hook.verified
        with pytest.raises(DeliveryFailed) as caught:  # same address, a name the cert is not for
            tls_sender.send(request(f"https://other.example.test:{hook.port}/in"))
    assert caught.value.code == "tls_error"
    assert len(hook.received) == 1


def test_every_urllib3_exception_becomes_our_delivery_error() -> None:
    kinds = [
        obj
        for obj in vars(urllib3.exceptions).values()
        if isinstance(obj, type) and issubclass(obj, Exception)
    ]
    assert len(kinds) > 20
    for kind in kinds:
        error = translate(kind.__new__(kind))
        assert isinstance(error, DeliveryFailed), kind
    known = {
        urllib3.exceptions.ReadTimeoutError: "timeout",
        urllib3.exceptions.ConnectTimeoutError: "connect_timeout",
        urllib3.exceptions.NewConnectionError: "connect_error",
        urllib3.exceptions.SSLError: "tls_error",
        urllib3.exceptions.ProtocolError: "connection_error",
        ConnectionRefusedError: "connect_error",
    }
    for kind, code in known.items():
        assert translate(kind.__new__(kind)).code == code


@pytest.mark.timeout(60)  # without the deadline this attempt never ends
def test_a_receiver_dripping_its_answer_is_cut_off_by_the_total_deadline() -> None:
    """Each byte arrives within the read timeout, so only a deadline on the whole attempt ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():  # one header byte every 0.1 s, forever
                with contextlib.suppress(OSError):
                    conn.sendall(b"X")
                stop.wait(0.1)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    try:
        with pytest.raises(DeliveryFailed) as caught:
            sender(read_timeout_s=5.0, total_timeout_s=1.0).send(request(url))
    finally:
        stop.set()
        listener.close()
    assert caught.value.code == "timeout"
    assert "deadline" in str(caught.value)  # the watchdog ended it, not a read timeout
