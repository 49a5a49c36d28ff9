"""The Monitor BentoML service: exactly one worker tailing the log (``bentoml.depends``).

Started by the gateway as a dependency. Its background loop runs :class:`MonitorRunner`
steps, checkpoints every ``checkpoint_every_seconds``, dispatches retrain webhooks and prunes
the log when retention is configured. Its metrics reach the gateway's ``/metrics`` through
BentoML's multiprocess directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import bentoml
from anyio import to_thread

from models.registry import get_model, model_names
from service.alerts import ALERT_KEY_PREFIX
from service.attribution_stream import AttributionStream
from service.config import Settings, get_settings, monitor_config
from service.lifecycle import exit_with_parent
from service.metrics import monitor_metrics, rollout_metrics, start_monitor_series
from service.monitor_runner import MonitorRunner
from service.retraining import Retraining
from service.rollout import Rollouts
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


def attribution_stream(settings: Settings) -> AttributionStream | None:
    """The monitor's attribution stream (None when the sample rate is 0)."""
    if settings.explain_sample_rate == 0.0:
        return None
    return AttributionStream(settings.explain_sample_rate, settings.explain_budget_us)


@bentoml.service(name="driftgate-monitor", workers=1, metrics={"enabled": True})
class Monitor:
    """Consumes the prediction log once, in order, for every model version."""

    def __init__(self) -> None:
        exit_with_parent()
        settings = get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.store = open_store(settings.resolved_store_url)
        self.metrics = monitor_metrics()
        start_monitor_series(self.metrics, served_features(settings))
        self.retraining = Retraining(self.store, settings, self.metrics)
        config = monitor_config(settings)
        self.runner = MonitorRunner(
            self.store, config, self.metrics,
            retrain=self.retraining.request if settings.retrain_from_events else None,
            batch=settings.monitor_batch,
            attribution=attribution_stream(settings),
        )
        self.rollouts = Rollouts(self.store, metrics=rollout_metrics(),
                                 webhooks=lambda: settings.serving().webhooks,
                                 drifted=self.runner.drifted)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    @bentoml.on_startup
    async def start(self) -> None:
        if self.settings.monitoring_enabled:  # one monitor per store also runs the rollouts
            self._tasks.append(asyncio.create_task(self._loop()))
            self._tasks.append(asyncio.create_task(self._rollout_loop()))
        self._tasks.append(asyncio.create_task(self.retraining.run(self._stop)))

    async def _rollout_loop(self) -> None:
        """Evaluate running rollouts every ``rollout_eval_seconds`` (state in the store, so
        a restarted monitor resumes them)."""
        while not self._stop.is_set():
            try:
                await to_thread.run_sync(self.rollouts.tick)
            except Exception:  # the store may be briefly away: try again next interval
                log.exception("rollout evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.rollout_eval_seconds)

    async def _loop(self) -> None:
        last_checkpoint = time.monotonic()
        last_prune = 0.0
        while not self._stop.is_set():
            try:
                result = await to_thread.run_sync(self.runner.step)
                now = time.monotonic()
                if now - last_checkpoint >= self.settings.checkpoint_every_seconds:
                    await to_thread.run_sync(self.runner.checkpoint)
                    last_checkpoint = now
                if now - last_prune > 3600:
                    await to_thread.run_sync(self._prune)
                    last_prune = now
            except Exception:  # keep monitoring: replay from the last checkpoint
                log.exception("monitor step failed; resuming from the last checkpoint")
                result = None
                with contextlib.suppress(Exception):
                    await to_thread.run_sync(self.runner.reload)
            if result is None or result.records < self.runner.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.settings.monitor_poll_seconds)

    def _prune(self) -> None:
        horizon = time.time() - self.settings.alert_retention_days * 86400.0
        forgotten = self.store.kv_prune(ALERT_KEY_PREFIX, horizon)
        log.info("forgot %d Alertmanager alerts", forgotten)
        if not self.settings.retention_days:
            return
        pruned = self.store.prune(
            self.settings.retention_days * 86400.0,
            self.store.min_checkpoint_offset() or 0,
            self.store.min_checkpoint_label_offset() or 0,
        )
        log.info("pruned %d log records", pruned)

    @bentoml.api
    async def status(self) -> dict[str, Any]:
        """Offsets and lag of the monitor."""
        records, seconds = await to_thread.run_sync(self.store.lag, self.runner.offset)
        return {"offset": self.runner.offset, "label_offset": self.runner.label_offset,
                "lag_records": records, "lag_seconds": seconds,
                "monitors": [f"{m}:{v}" for m, v in self.runner.monitors]}

    @bentoml.on_shutdown
    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        with contextlib.suppress(Exception):
            await to_thread.run_sync(self.runner.checkpoint)
        self.store.close()
