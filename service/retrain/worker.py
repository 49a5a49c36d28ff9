"""The retrain worker: receives driftgate's signed ``driftgate.retrain_requested`` webhooks and
runs :class:`~service.retrain.job.RetrainJob` for each, one per model at a time.

- The Standard Webhooks signature is verified (``standardwebhooks``); anything else gets 401.
- Deduplication on ``webhook-id`` is durable (the store's key-value table): a redelivery,
  also after a restart, is answered 200 ``duplicate`` and never trains twice.
- A request for a model whose retrain is still running (training or its rollout) is
  recorded and answered 200 ``busy``, not queued.
- Other driftgate events (``driftgate.rollout_finished``) are answered 200 ``ignored``.

Run one worker per store (the deduplication and the one-retrain-per-model rule are kept by
one process). A worker killed during a retrain does not resume it: the request stays
answered, and the model's episode ends after ``retrain_timeout_seconds`` so the monitor may
request again.

Run it with ``driftgate retrain worker --trainer MODULE:FUNCTION``, mount :attr:`app` in your
own ASGI server, or call :meth:`handle` from any web framework.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.config import get_settings
from service.retrain.contract import Trainer, load_trainer
from service.retrain.job import JobResult, RetrainJob, RetrainRequest
from service.retrain.metrics import retrain_metrics
from service.retrain.settings import RetrainSettings
from service.retrain.store_io import LoopStore
from service.store.base import Store
from service.store.factory import open_store
from service.webhooks.payload import EVENT_TYPE

__all__ = ["RetrainWorker", "WEBHOOK_PATH"]

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/driftgate"
MAX_BODY = 1024 * 1024


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, "details": {}}}


class RetrainWorker:
    """Verifies, deduplicates and runs retrain requests (a thread per running retrain)."""

    def __init__(self, trainer: Trainer | str, *, settings: RetrainSettings | None = None,
                 store: Store | None = None, registry: CollectorRegistry | None = None,
                 max_parallel: int = 4) -> None:
        self.settings = settings or RetrainSettings()
        if not self.settings.secret:
            raise ValueError("the retrain worker needs the webhook secret "
                             "(DRIFTGATE_RETRAIN_SECRET or --secret)")
        self.trainer_name = trainer if isinstance(trainer, str) else (
            f"{trainer.__module__}:{trainer.__qualname__}")
        function = load_trainer(trainer) if isinstance(trainer, str) else trainer
        self._own_store = store is None
        if store is None:
            app_settings = get_settings()
            app_settings.data_dir.mkdir(parents=True, exist_ok=True)
            store = open_store(app_settings.resolved_store_url)
        self.store = store
        self.io = LoopStore(store)
        self.job = RetrainJob(self.io, function, self.trainer_name, self.settings)
        self.registry = registry or CollectorRegistry()
        self.metrics = retrain_metrics(self.registry)
        self._verifier = Webhook(self.settings.secret)
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # model -> webhook id
        self._futures: list[Future[JobResult]] = []
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="retrain")
        self.app = Starlette(routes=[
            Route(WEBHOOK_PATH, self._webhook, methods=["POST"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/livez", lambda _: JSONResponse({"status": "ok"}), methods=["GET"]),
        ])

    # -- the webhook -----------------------------------------------------------------------
    def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer one webhook delivery: (HTTP status, JSON body)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            payload = self._verifier.verify(body, lowered)
        except WebhookVerificationError as exc:
            return self._count("invalid", *_error(401, "invalid_signature", str(exc)))
        webhook_id = lowered.get("webhook-id", "")
        if not isinstance(payload, dict) or payload.get("type") != EVENT_TYPE:
            kind = payload.get("type") if isinstance(payload, dict) else None
            return self._count("ignored", 200, {"status": "ignored", "type": kind})
        if not isinstance(payload.get("model"), str):
            return self._count("invalid", *_error(422, "invalid_body", "no model named"))
        request = RetrainRequest(webhook_id, payload)
        with self._lock:
            seen = self.io.seen(webhook_id)
            if seen is not None:
                first = {k: v for k, v in seen.items() if k != "status"}
                return self._count("duplicate", 200, {**first, "status": "duplicate",
                                                      "outcome": seen.get("status")})
            running = self._running.get(request.model)
            state = {"model": request.model, "event_id": request.event_id}
            if running is not None:
                self.io.remember(webhook_id, {**state, "status": "busy", "running": running})
                return self._count("busy", 200, {"status": "busy", "running": running})
            self.io.remember(webhook_id, {**state, "status": "accepted"})
            self._running[request.model] = webhook_id
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(self._pool.submit(self._run, request))
        return self._count("accepted", 202, {"status": "accepted", "model": request.model})

    def _run(self, request: RetrainRequest) -> JobResult:
        try:
            result = self.job.run(request)
            self.metrics.retrains.labels(request.model, result.outcome).inc()
            self.metrics.seconds.observe(result.seconds)
            self.io.remember(request.webhook_id, {
                "model": request.model, "event_id": request.event_id,
                "status": result.outcome, "version": result.version,
                "rollout": result.rollout})  # fmt: skip
            if result.outcome == "registered":
                self.job.follow(request, result)
            return result
        finally:
            with self._lock:
                self._running.pop(request.model, None)

    def _count(self, status: str, code: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.metrics.requests.labels(status).inc()
        return code, body

    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            code, doc = _error(413, "body_too_large", f"bodies over {MAX_BODY} bytes")
        else:
            from anyio import to_thread

            code, doc = await to_thread.run_sync(self.handle, body, dict(request.headers))
        return JSONResponse(doc, status_code=code)

    async def _metrics(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    # -- running ---------------------------------------------------------------------------
    def running(self) -> dict[str, str]:
        with self._lock:
            return dict(self._running)

    def wait_idle(self, timeout: float | None = None) -> list[JobResult]:
        """Wait for every retrain started so far (and its rollout) to end."""
        done, _ = wait(list(self._futures), timeout=timeout)
        return [f.result() for f in done]

    def serve(self, host: str = "127.0.0.1", port: int = 3100) -> None:
        """Serve :attr:`app` until interrupted (uvicorn)."""
        import uvicorn

        log.info("retrain worker on http://%s:%d%s, trainer %s", host, port, WEBHOOK_PATH,
                 self.trainer_name)
        uvicorn.run(self.app, host=host, port=port, log_level="info")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_store:
            self.store.close()
