"""Clients that send slowly cannot hold the server's connections: a request's headers must
arrive within CONVLOG_HEADER_TIMEOUT, its body within CONVLOG_BODY_TIMEOUT."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import start_server


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    root = tmp_path_factory.mktemp("convlog-slow")
    env = {
        "CONVLOG_DATA_DIR": str(root / "data"),
        "CONVLOG_HEADER_TIMEOUT": "1",
        "CONVLOG_BODY_TIMEOUT": "1",
    }
    with start_server(env, root) as url:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        yield parts.hostname, parts.port


def closed(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_trickled_headers_are_cut_off(address: tuple[str, int]) -> None:
    socks = [socket.create_connection(address) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"GET /v1/health/ HTTP/1.1\r\nHost: localhost\r\n")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # a header line now and then, never the end
        for sock in socks:
            with contextlib.suppress(OSError):  # cut off already
                sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.3)
    cut_off = [closed(sock) for sock in socks]
    for sock in socks:
        sock.close()
    assert all(cut_off)
    with socket.create_connection(address) as fresh:  # the server still serves others
        fresh.sendall(b"GET /v1/health/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert fresh.recv(100).startswith(b"HTTP/1.1 200")


def test_a_trickled_body_is_408(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(
            b"POST /v1/agents/ HTTP/1.1\r\nHost: localhost\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": '
        )
        sock.settimeout(5)
        answer = sock.recv(1000)
    assert answer.startswith(b"HTTP/1.1 408"), answer
