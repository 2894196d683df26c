"""The loopback-only guard itself must work, or every other test's promise is empty."""

import socket

import pytest

from tests.conftest import NetworkAccessError


def test_non_loopback_connections_are_refused() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkAccessError),
    ):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed


def test_loopback_connections_are_allowed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())
            peer, _ = server.accept()
            peer.close()
