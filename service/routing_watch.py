"""Keep a worker's :class:`~service.routing.Router` on the store's routing and the registry.

A daemon thread polls, every ``poll_seconds``, the store's routing revision (one indexed
row) and the registry's signature (a few ``stat`` calls). When either moved, it re-reads the
routing and the registry and calls :meth:`Router.refresh`, which loads and warms new
versions in this thread before swapping the table; requests never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from models.registry import RegisteredModel, list_models, registry_signature
from service.config import ServedModelConfig, ServingConfig
from service.metrics import RoutingMetrics
from service.routing import Registry, Router
from service.routing_state import spec_of
from service.store.base import RoutingStore

log = logging.getLogger(__name__)


class RoutingSource(Protocol):
    """Where the routing comes from: the store (live) or the serving file (static)."""

    def revision(self) -> int: ...

    def read(self) -> tuple[int, dict[str, ServedModelConfig]]: ...


class StoreRouting:
    def __init__(self, store: RoutingStore) -> None:
        self.store = store

    def revision(self) -> int:
        return self.store.routing_revision()

    def read(self) -> tuple[int, dict[str, ServedModelConfig]]:
        snapshot = self.store.routing_read()
        specs: dict[str, ServedModelConfig] = {}
        for name, document in snapshot.states.items():
            try:
                specs[name] = spec_of(document)
            except ValueError:
                log.exception("invalid routing of %s at revision %d", name, snapshot.revision)
        return snapshot.revision, specs


class FileRouting:
    """The serving file's routing, fixed (no store: the prediction log is switched off)."""

    def __init__(self, serving: ServingConfig) -> None:
        self.serving = serving

    def revision(self) -> int:
        return 0

    def read(self) -> tuple[int, dict[str, ServedModelConfig]]:
        return 0, dict(self.serving.models)


def registry_by_name() -> Registry:
    grouped: dict[str, list[RegisteredModel]] = defaultdict(list)
    for entry in list_models():  # oldest first per name
        grouped[entry.name].append(entry)
    return dict(grouped)


class RoutingWatcher:
    """Applies routing and registry changes to ``router``; see the module docstring."""

    def __init__(
        self, router: Router, source: RoutingSource, poll_seconds: float = 0.5,
        metrics: RoutingMetrics | None = None,
        signature: Callable[[], object] = registry_signature,
    ) -> None:
        self.router = router
        self.source = source
        self.poll_seconds = poll_seconds
        self.metrics = metrics
        self._signature = signature
        self._seen_revision: int | None = None
        self._seen_signature: object = None
        self._registry: Registry = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One poll; refreshes the router when something moved. True if it did."""
        revision = self.source.revision()
        signature = self._signature()
        registry_moved = signature != self._seen_signature
        unchanged = revision == self._seen_revision and not registry_moved
        if unchanged and not self.router.retry_pending():
            return False
        started = time.perf_counter()
        if registry_moved:
            self._registry = registry_by_name()
        applied, specs = self.source.read()
        self.router.refresh(applied, specs, self._registry)
        log.info("routing revision %d applied in %.3f s", applied, time.perf_counter() - started)
        self._seen_revision, self._seen_signature = applied, signature
        if self.metrics is not None:
            self.metrics.revision.set(applied)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="routing-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
                self.router.unload_drained()
            except Exception:  # a store hiccup must not stop watching
                log.exception("routing poll failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
