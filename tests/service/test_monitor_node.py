"""Monitor nodes sharing a store: fair share of the partitions, hand-over without losing the
leases a node keeps (also while a step is slow), and a graceful stop that hands over at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitoring import MonitorConfig
from service.config import Settings
from service.monitor_node import MonitorNode
from service.monitor_runner import MonitorRunner
from service.partitions import Partitioning
from service.store.entities import LeaseLost
from service.store.factory import open_store

STEP_SECONDS = 1.5  # longer than a lease renewal interval: renewals must not wait for it


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "log.sqlite3"))
    yield s
    s.close()


def _node(store, tmp_path, holder: str) -> MonitorNode:
    settings = Settings(data_dir=tmp_path, monitor_partitions=2, monitor_lease_seconds=1.0,
                        monitor_lease_poll_seconds=0.2, checkpoint_every_seconds=0.2,
                        monitor_poll_seconds=0.05)
    partitioning = Partitioning(2)

    def slow_runner(partition: int) -> MonitorRunner:
        runner = MonitorRunner(store, MonitorConfig(quality_events=False),
                               consumer=partitioning.consumer(partition),
                               partition=str(partition),
                               owns=lambda model: partitioning.owns(partition, model),
                               status_key=partitioning.status_key(partition))
        step = runner.step

        def slow_step():
            time.sleep(STEP_SECONDS)
            return step()

        runner.step = slow_step  # type: ignore[method-assign]
        return runner

    return MonitorNode(store, settings, holder=holder, runner_factory=slow_runner)


async def _until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _tokens(store) -> dict[str, tuple[str, int]]:
    return {row.name: (row.holder, row.token) for row in store.lease_list("monitor:")}


def test_a_second_node_gets_half_and_the_first_keeps_its_other_lease(store, tmp_path):
    async def scenario() -> None:
        a, b = _node(store, tmp_path, "a"), _node(store, tmp_path, "b")
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        run_a = asyncio.create_task(a.run(stop_a))
        await _until(lambda: a.working == [0, 1], 5)
        run_b = asyncio.create_task(b.run(stop_b))
        await _until(lambda: list(a.held) == [0] and b.working == [1], 10)
        # a handed partition 1 over after its slow step and kept partition 0 all along
        assert _tokens(store) == {"monitor:0/2": ("a", 1), "monitor:1/2": ("b", 2)}
        await asyncio.sleep(3 * STEP_SECONDS)  # slow steps go on: no lease is lost
        assert _tokens(store) == {"monitor:0/2": ("a", 1), "monitor:1/2": ("b", 2)}

        stopped = time.monotonic()
        stop_a.set()
        await run_a
        await _until(lambda: b.working == [0, 1], 5)
        # a released its lease: b did not wait for it to expire
        assert time.monotonic() - stopped < 1.0 + 2 * STEP_SECONDS + 0.5
        assert _tokens(store) == {"monitor:0/2": ("b", 2), "monitor:1/2": ("b", 2)}
        stop_b.set()
        await run_b

    asyncio.run(scenario())


class CutOff:
    """A store whose every call fails while ``cut`` is set (a network partition)."""

    def __init__(self, store) -> None:
        self._store = store
        self.cut = False

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.cut:
                raise ConnectionError("no route to the database")
            return attr(*args, **kwargs)

        return call


def test_a_monitor_cut_off_from_the_store_stands_down_and_its_writes_are_fenced(
        store, tmp_path):
    async def scenario() -> None:
        link = CutOff(store)
        a, b = _node(link, tmp_path, "a"), _node(store, tmp_path, "b")
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        run_a = asyncio.create_task(a.run(stop_a))
        await _until(lambda: a.working == [0, 1], 5)
        runner = a.held[0].runner
        run_b = asyncio.create_task(b.run(stop_b))
        await _until(lambda: len(b.working) == 1, 10)
        link.cut = True  # a can no longer renew; b takes its partition after the lease
        await _until(lambda: b.working == [0, 1], 10)
        await _until(lambda: not a.held, 5)  # a stood down once its lease ran out
        with pytest.raises(LeaseLost):  # a late write of a's old runner is rejected
            link.cut = False
            runner.checkpoint()
        # a is back: b hands it one partition (a new term), nothing is taken from b by force
        await _until(lambda: len(a.working) == 1 and len(b.working) == 1, 10)
        tokens = _tokens(store)
        assert sorted(holder for holder, _ in tokens.values()) == ["a", "b"]
        assert all(token >= 2 for _, token in tokens.values())
        stop_a.set()
        stop_b.set()
        await asyncio.gather(run_a, run_b)

    asyncio.run(scenario())
