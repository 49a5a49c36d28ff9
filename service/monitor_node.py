"""One monitor process among several: lease coordination, hot standby, partitions.

Every monitor process of a store (inside a gateway or on its own, ``driftgate monitor run``)
runs a :class:`MonitorNode`. Every ``monitor_lease_poll_seconds`` the node

* renews its membership heartbeat (a lease of its own) and counts the live members, which
  gives its fair share, ``ceil(partitions / members)``;
* renews the partition leases it holds; a lease it could not renew for
  ``monitor_lease_seconds`` (or that another process took) is dropped at once: its runner
  stops, its gauges are withdrawn, and the store rejects any late write (fencing);
* hands a partition over when it holds more than its share (checkpoint, then release), and
  takes free or expired partitions while it holds fewer.

A held partition runs a :class:`~service.monitor_runner.MonitorRunner` resumed from that
partition's checkpoint, fenced with the lease: its checkpoint, events and retrain requests
are written only while the lease is held. A standby holds nothing and only polls the lease
table (its CPU is next to nothing). Rollouts of a partition's models are evaluated, and the
webhook outbox delivered, by the processes holding partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitoring.detectors import cusum_kernel
from service.alerts import ALERT_KEY_PREFIX
from service.attribution_stream import attribution_stream
from service.config import Settings, monitor_config
from service.metrics import MonitorMetrics
from service.monitor_runner import CONSUMER, MonitorRunner
from service.partitions import MEMBER_PREFIX, Partitioning
from service.retraining import Retraining
from service.rollout import Rollouts
from service.store.base import Store
from service.store.entities import Lease, LeaseLost
from service.tail_latency import freeze_startup_objects

__all__ = ["MonitorNode", "default_holder"]

METRICS_EVERY_SECONDS = 1.0
"""Gauges are exported at most this often while no step finds an event (Prometheus scrapes
every 15 s; a monitor working off a backlog spent a third of its time exporting them)."""

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 3600.0
MEMBER_FORGET_SECONDS = 3600.0  # a monitor process's heartbeat expired this long is deleted


def _warm_up() -> None:
    """Compile the CUSUM kernel before the first batch needs it (a failure is logged: the
    first batch then compiles it, or reports why it cannot)."""
    try:
        cusum_kernel.warm_up()
    except Exception:
        log.exception("compiling the CUSUM kernel at start failed")


def default_holder() -> str:
    """This process's name in the lease table: host (the pod on Kubernetes), pid, nonce."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


@dataclass
class _Held:
    """A partition this node holds: its lease, runner and work task."""

    lease: Lease
    runner: MonitorRunner
    renewed: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False  # a fenced write was rejected, or the lease could not be renewed
    leaving: bool = False  # stopping: its last step finishes, then it is handed over
    finish: asyncio.Task[None] | None = None
    task: asyncio.Task[None] | None = None


class MonitorNode:
    """Competes for the partitions' leases and runs those it holds (module docstring)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        metrics: MonitorMetrics | None = None,
        retraining: Retraining | None = None,
        rollouts: Rollouts | None = None,
        holder: str | None = None,
        runner_factory: Callable[[int], MonitorRunner] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.retraining = retraining
        self.rollouts = rollouts
        self.holder = holder or default_holder()
        self.partitioning = Partitioning.from_settings(settings)
        self._factory = runner_factory or self._runner
        self.held: dict[int, _Held] = {}
        self.members = 1
        self.started_at = time.time()
        self._pruned = 0.0

    # -- public --------------------------------------------------------------------------
    @property
    def working(self) -> list[int]:
        """The partitions this node holds and is not handing over."""
        return sorted(p for p, h in self.held.items() if not h.leaving)

    @property
    def active(self) -> bool:
        return bool(self.working)

    def owns(self, model: str) -> bool:
        """Whether a partition this node works on monitors ``model``."""
        return self.partitioning.partition_of(model) in self.working

    def drifted(self, model: str, version: str) -> list[str]:
        """The drift-active streams of a version, from the runner of its partition (none
        when this node does not hold it)."""
        held = self.held.get(self.partitioning.partition_of(model))
        return [] if held is None or held.leaving else held.runner.drifted(model, version)

    async def run(self, stop: asyncio.Event) -> None:
        """Coordinate until ``stop`` is set; then hand every partition over. With
        monitoring switched off the process takes no lease (it must not keep a monitor of
        the store from running) and only delivers webhooks (several senders share the
        outbox safely)."""
        if not self.settings.monitoring_enabled:
            if self.retraining is not None:
                await self.retraining.run(stop)
            return
        tasks = [asyncio.create_task(self._rollout_loop(stop)),
                 asyncio.create_task(asyncio.to_thread(_warm_up))]
        if self.retraining is not None:
            tasks.append(asyncio.create_task(
                self.retraining.run(stop, active=lambda: self.active)))
        try:
            while not stop.is_set():
                try:
                    await self.coordinate()
                except Exception:  # the store may be away: renewals are retried next tick
                    log.exception("monitor lease coordination failed")
                    self._stand_down_unrenewed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.monitor_lease_poll_seconds)
        finally:
            await self.shutdown()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)

    async def coordinate(self) -> None:
        """One round: heartbeat, renew, hand over above the fair share, take below it."""
        s, count = self.settings, self.partitioning.count
        ttl = s.monitor_lease_seconds
        await asyncio.to_thread(self.store.lease_acquire, MEMBER_PREFIX + self.holder,
                                self.holder, ttl)
        if time.monotonic() - self._pruned >= MEMBER_FORGET_SECONDS:
            self._pruned = time.monotonic()  # departed processes' heartbeats
            await asyncio.to_thread(self.store.lease_prune, MEMBER_PREFIX,
                                    MEMBER_FORGET_SECONDS)
        rows = await asyncio.to_thread(self.store.lease_list, MEMBER_PREFIX)
        self.members = max(1, sum(1 for r in rows if r.expires_in > 0))
        fair = math.ceil(count / self.members)
        # renewals never wait for a step: a partition being handed over is still renewed
        # until its last step is done and its checkpoint written
        for partition, held in sorted(self.held.items()):
            if self.held.get(partition) is not held:
                continue  # let go meanwhile
            if held.lost:
                self._leave(partition, hand_over=False)
            else:
                await self._renew(partition)
        working = self.working
        while len(working) > fair:
            self._leave(working.pop(), hand_over=True)
        for partition in range(count):
            if len(working) >= fair:
                break
            if partition in self.held:
                continue
            lease = await asyncio.to_thread(self.store.lease_acquire,
                                            self.partitioning.lease_name(partition),
                                            self.holder, ttl)
            if lease is not None and await self._take(partition, lease):
                working.append(partition)
        self._export()

    async def shutdown(self) -> None:
        """Checkpoint and release every held partition; leave the membership."""
        for partition in sorted(self.held):
            with contextlib.suppress(Exception):
                await self.drop(partition, hand_over=True)
        with contextlib.suppress(Exception):
            me = Lease(MEMBER_PREFIX + self.holder, self.holder, 1)
            await asyncio.to_thread(self.store.lease_release, me)

    def status(self) -> dict[str, Any]:
        """What this process does: its holder name and, per held partition, the position."""
        return {
            "holder": self.holder, "active": self.active, "members": self.members,
            "partitions": self.partitioning.count,
            "held": {str(p): {"lease": h.lease.name, "token": h.lease.token,
                              "offset": h.runner.offset, "label_offset": h.runner.label_offset,
                              "lag_records": h.runner.lag[0], "lag_seconds": h.runner.lag[1],
                              "monitors": [f"{m}:{v}" for m, v in h.runner.monitors]}
                     for p, h in sorted(self.held.items())},
        }  # fmt: skip

    # -- partitions ----------------------------------------------------------------------
    def _runner(self, partition: int) -> MonitorRunner:
        s, p = self.settings, self.partitioning
        retrain = self.retraining.request if (self.retraining and s.retrain_from_events) else None
        owns = None if p.count == 1 else (lambda model: p.owns(partition, model))
        return MonitorRunner(
            self.store, monitor_config(s), self.metrics, retrain=retrain, batch=s.monitor_batch,
            consumer=p.consumer(partition), owns=owns, partition=str(partition),
            status_key=p.status_key(partition), seed=CONSUMER if p.count > 1 else None,
            attribution=attribution_stream(s), metrics_every=METRICS_EVERY_SECONDS,
        )  # fmt: skip

    async def _take(self, partition: int, lease: Lease) -> bool:
        """Start working on a partition just acquired: resume from its checkpoint."""
        try:
            runner = await asyncio.to_thread(self._factory, partition)
        except Exception:
            log.exception("partition %d: cannot load its checkpoint; releasing", partition)
            await asyncio.to_thread(self.store.lease_release, lease)
            return False
        runner.fence = lease
        held = _Held(lease, runner, time.monotonic())
        self.held[partition] = held
        held.task = asyncio.create_task(self._work(partition, held))
        log.info("partition %d (%s): active with token %d from offset %d", partition,
                 lease.name, lease.token, runner.offset)
        return True

    async def _renew(self, partition: int) -> None:
        held = self.held[partition]
        try:
            ok = await asyncio.to_thread(self.store.lease_renew, held.lease,
                                         self.settings.monitor_lease_seconds)
        except Exception:
            log.warning("partition %d: lease renewal failed", partition, exc_info=True)
            ok = time.monotonic() - held.renewed < self.settings.monitor_lease_seconds
        else:
            if ok:
                held.renewed = time.monotonic()
        if not ok:
            log.warning("partition %d: lease lost; standing down", partition)
            held.lost = True
            self._leave(partition, hand_over=False)

    def _stand_down_unrenewed(self) -> None:
        """Cut off from the store: a lease not renewed for its whole term is another's by
        now (its writes would be rejected anyway); stop working on it."""
        for partition, held in list(self.held.items()):
            expired = time.monotonic() - held.renewed >= self.settings.monitor_lease_seconds
            if expired and not held.lost:
                log.warning("partition %d: lease not renewed in time; standing down", partition)
                held.lost = True
                self._leave(partition, hand_over=False)

    def _leave(self, partition: int, *, hand_over: bool) -> asyncio.Task[None]:
        """Stop working on a partition (in the background: its step in flight finishes
        first); with ``hand_over`` checkpoint it and release its lease (a standby takes it
        at once), else (lost) just stop."""
        held = self.held[partition]
        if held.finish is None:
            held.leaving = True
            held.done.set()
            held.finish = asyncio.create_task(self._finish(partition, held, hand_over))
        return held.finish

    async def drop(self, partition: int, *, hand_over: bool) -> None:
        """:meth:`_leave` and wait until the partition is let go."""
        if partition in self.held:
            await self._leave(partition, hand_over=hand_over)

    async def _finish(self, partition: int, held: _Held, hand_over: bool) -> None:
        if held.task is not None:
            with contextlib.suppress(Exception):
                await held.task
        if hand_over and not held.lost:
            try:
                await asyncio.to_thread(held.runner.checkpoint)
                await asyncio.to_thread(self.store.lease_release, held.lease)
            except Exception:  # lost meanwhile: the next holder resumes from the last one
                log.warning("partition %d: hand-over incomplete", partition, exc_info=True)
                hand_over = False
        held.runner.retire_metrics()
        if self.held.get(partition) is held:
            del self.held[partition]
        self._export()
        log.info("partition %d: %s", partition, "handed over" if hand_over else "dropped")

    async def _work(self, partition: int, held: _Held) -> None:
        """Step the partition's runner until it is dropped; checkpoint periodically."""
        s, runner = self.settings, held.runner
        last_checkpoint, last_prune = time.monotonic(), -math.inf  # prune soon after start
        frozen = -1  # monitors built when the collector last froze the heap
        while not held.done.is_set():
            result = None
            try:
                result = await asyncio.to_thread(runner.step)
                if s.tail_latency_fix and len(runner.monitors) != frozen:
                    # references and calibrations are long-lived: keep them out of the
                    # collections the records of every batch trigger (halves a one-row
                    # block's cost, loadtests.monitor_throughput)
                    frozen = len(runner.monitors)
                    await asyncio.to_thread(freeze_startup_objects)
                now = time.monotonic()
                if now - last_checkpoint >= s.checkpoint_every_seconds:
                    await asyncio.to_thread(runner.checkpoint)
                    last_checkpoint = now
                if partition == 0 and now - last_prune >= PRUNE_EVERY_SECONDS:
                    await asyncio.to_thread(self._prune)
                    last_prune = now
            except LeaseLost:
                log.warning("partition %d: a write was fenced off; standing down", partition)
                held.lost = True  # the next coordination round drops it
                return
            except Exception:  # keep monitoring: replay from the last checkpoint
                log.exception("partition %d: step failed; resuming from its checkpoint",
                              partition)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(runner.reload)
            if result is None or result.read < runner.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(held.done.wait(), s.monitor_poll_seconds)

    async def _rollout_loop(self, stop: asyncio.Event) -> None:
        """Evaluate the running rollouts of the held partitions' models."""
        while not stop.is_set():
            if self.rollouts is not None and self.active:
                try:
                    await asyncio.to_thread(self.rollouts.tick, self.owns)
                except Exception:  # the store may be briefly away: next interval
                    log.exception("rollout evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.rollout_eval_seconds)

    def _prune(self) -> None:
        s = self.settings
        forgotten = self.store.kv_prune(ALERT_KEY_PREFIX,
                                        time.time() - s.alert_retention_days * 86400.0)
        log.info("forgot %d Alertmanager alerts", forgotten)
        if s.retention_days:
            pruned = self.store.prune(s.retention_days * 86400.0,
                                      self.store.min_checkpoint_offset() or 0,
                                      self.store.min_checkpoint_label_offset() or 0)
            log.info("pruned %d log records", pruned)

    def _export(self) -> None:
        """Per-partition activity, and this process's lag over what it holds (NaN while
        it holds nothing: a standby reports no lag; ``max`` in the rules ignores NaN)."""
        m = self.metrics
        if m is None:
            return
        working = self.working
        for partition in range(self.partitioning.count):
            m.partition_active.labels(str(partition)).set(1 if partition in working else 0)
        lags = [self.held[p].runner.lag for p in working]
        m.lag_records.set(sum(r for r, _ in lags) if lags else math.nan)
        m.lag_seconds.set(max(sec for _, sec in lags) if lags else math.nan)
