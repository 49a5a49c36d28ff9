"""The Monitor BentoML service: exactly one worker tailing the log (``bentoml.depends``).

Started by the gateway as a dependency (unless ``DRIFTGATE_MONITOR_IN_GATEWAY=false``; then
``driftgate monitor run`` runs the same :class:`MonitorNode` on its own). The node holds the
monitor's lease (or its partitions'), runs :class:`MonitorRunner` steps, checkpoints every
``checkpoint_every_seconds``, dispatches retrain webhooks, evaluates rollouts and prunes the
log when retention is configured; on PostgreSQL the monitors of other replicas stand by.
Its metrics reach the gateway's ``/metrics`` through BentoML's multiprocess directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import bentoml

from models.registry import get_model, model_names
from service.config import Settings, get_settings
from service.lifecycle import exit_with_parent
from service.metrics import monitor_metrics, rollout_metrics, start_monitor_series
from service.monitor_node import MonitorNode
from service.retraining import Retraining
from service.rollout import Rollouts
from service.store.base import Store
from service.store.factory import open_store

log = logging.getLogger(__name__)


def served_features(settings: Settings) -> dict[str, list[str]]:
    """The served models and their default version's features (for series at 0)."""
    configs = settings.serving().models
    out: dict[str, list[str]] = {}
    for name in configs or model_names():
        try:
            version = configs[name].default if configs else "latest"
            out[name] = get_model(name, version).card.feature_names
        except Exception:  # an unregistered model is the gateway's error to report
            log.warning("no series at 0 for %s: not registered", name)
    return out


@bentoml.service(name="driftgate-monitor", workers=1, metrics={"enabled": True})
class Monitor:
    """Consumes the prediction log once, in order, for every model version (as the active
    monitor of its partitions, or as a standby: :class:`MonitorNode`)."""

    def __init__(self) -> None:
        exit_with_parent()
        self.settings, self.store, self.node = build_node()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None

    @bentoml.on_startup
    async def start(self) -> None:
        self._task = asyncio.create_task(self.node.run(self._stop))

    @bentoml.api
    async def status(self) -> dict[str, Any]:
        """This monitor process: its holder name and the partitions it holds."""
        return self.node.status()

    @bentoml.on_shutdown
    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 20)
        self.store.close()


def build_node(settings: Settings | None = None) -> tuple[Settings, Store, MonitorNode]:
    """The monitor of this process: store, metrics (series at 0), webhooks, rollouts."""
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.resolved_store_url)
    metrics = monitor_metrics()
    start_monitor_series(metrics, served_features(settings))
    retraining = Retraining(store, settings, metrics)
    rollouts = Rollouts(store, metrics=rollout_metrics(),
                        webhooks=lambda: settings.serving().webhooks)
    node = MonitorNode(store, settings, metrics=metrics, retraining=retraining,
                       rollouts=rollouts if settings.monitoring_enabled else None)
    rollouts.drifted = node.drifted  # the drift gate reads the detectors of the model's runner
    return settings, store, node
