"""Test helpers for the webhook tests (imported as a plain module)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from service.config import WebhookEndpoint

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class FakeClock:
    """Starts at wall-clock time (signatures must verify: +-5 min), moved forward by hand."""

    def __init__(self) -> None:
        self.now = time.time() + 1.0  # items enqueued "just now" are due

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

    ``script`` holds status codes to answer next (then ``default``); ``attempts`` records
    every request, ``delivered`` the verified bodies answered with 2xx.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.webhook = Webhook(secret)
        self.script: deque[int] = deque()
        self.default = 200
        self.attempts: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/retrain"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            try:
                payload = self.webhook.verify(body, headers)
            except WebhookVerificationError:
                self.bad_signatures += 1
                return 401
            status = self.script.popleft() if self.script else self.default
            record = {
                "id": headers["webhook-id"],
                "payload": payload,
                "status": status,
                "headers": headers,
            }
            self.attempts.append(record)
            if 200 <= status < 300:
                self.delivered.append(record)
            return status

    def ids(self) -> Counter[str]:
        """Deliveries (2xx) per webhook-id."""
        return Counter(r["id"] for r in self.delivered)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
                out = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def endpoint(url: str, models: list[str] | None = None) -> WebhookEndpoint:
    return WebhookEndpoint(url=url, secret=SECRET, models=models)
