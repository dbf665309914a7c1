"""Port choice for the embedded servers: a preferred port is used only when a server could bind it."""

from __future__ import annotations

import socket

from pipeline.embedded_services import free_port


def test_a_free_preferred_port_is_kept() -> None:
    port = free_port()
    assert free_port(port) == port


def test_a_port_held_by_a_client_connection_is_not_offered() -> None:
    # The local end of a client connection holds its port without listening on it: a connect
    # test says "free", a server's bind then fails. Bind one such socket and ask for its port.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        assert free_port(port) != port


def test_a_listening_port_is_not_offered() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert free_port(port) != port
