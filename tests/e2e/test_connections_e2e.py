"""Connections are bounded on a real gateway: idle and slow (slowloris) connections are
closed after the header timeout, connections over the limit are refused at once, and normal
requests keep working."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx

from tests.e2e.conftest import start_gateway_retrying, stop_gateway

HEADER_TIMEOUT, LIMIT = 1.0, 20


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closed ``sock`` (sending ``trickle`` bytes meanwhile)."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed by the server
            return time.monotonic() - start
    return None


def _closed_now(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except OSError:
        return True


def test_idle_slow_and_excess_connections_are_bounded(demo_models, tmp_path):
    server = start_gateway_retrying(tmp_path, {
        "DRIFTGATE_WORKERS": "1", "DRIFTGATE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "DRIFTGATE_MAX_CONNECTIONS": str(LIMIT)})
    sockets: list[socket.socket] = []
    try:
        address = ("127.0.0.1", server.port)
        idle = socket.create_connection(address)
        sockets.append(idle)
        closed = _closed_within(idle, 10)
        assert closed is not None and closed < HEADER_TIMEOUT + 2, closed

        slow = socket.create_connection(address)
        sockets.append(slow)
        slow.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        closed = _closed_within(slow, 10, trickle=b"X")  # one header byte at a time
        assert closed is not None and closed < HEADER_TIMEOUT + 2, closed

        crowd = [socket.create_connection(address) for _ in range(LIMIT + 15)]
        sockets.extend(crowd)
        time.sleep(0.3)  # well inside the header timeout: only refusals are closed yet
        refused = sum(_closed_now(s) for s in crowd)
        assert 15 <= refused <= 16, refused  # the idle one above may still be counted
        for sock in crowd:
            sock.close()
        time.sleep(0.5)  # the server sees them go

        with httpx.Client(base_url=server.url, timeout=10) as http:  # a keep-alive client
            for _ in range(3):
                assert http.get("/livez").status_code == 200
                time.sleep(HEADER_TIMEOUT / 2)
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        stop_gateway(server)
