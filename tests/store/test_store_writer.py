"""GroupCommitWriter: coalescing, durable vs async acknowledgement, backpressure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from service.store import GroupCommitWriter, PredictionRecord, Store
from tests.store.store_helpers import make_records


class GatedStore:
    """Delegates to a real store; ``append`` waits for ``gate`` (so tests control when a
    commit finishes) and counts calls."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []
        self.fail: Exception | None = None

    def append(self, records: Sequence[PredictionRecord]) -> None:
        self.entered.set()
        self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.store.append(records)
        self.calls.append(len(records))


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(60_000):  # generous: a correctness wait, not a timing assertion
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


def test_concurrent_submits_are_coalesced(store: Store) -> None:
    gated = GatedStore(store)
    commits: list[tuple[float, int]] = []

    async def main() -> None:
        writer = GroupCommitWriter(gated, on_commit=lambda s, n: commits.append((s, n)))  # type: ignore[arg-type]
        first = asyncio.create_task(writer.submit(make_records(1)))
        await _until(gated.entered.is_set, "first commit started")
        rest = [asyncio.create_task(writer.submit(make_records(1))) for _ in range(199)]
        await asyncio.sleep(0)  # let them all queue while the first commit is blocked
        gated.gate.set()
        await asyncio.gather(first, *rest)
        await writer.close()
        assert writer.commits == len(gated.calls) and writer.records_committed == 200

    asyncio.run(main())
    assert gated.calls == [1, 199]  # 200 requests -> 2 transactions
    assert [n for _, n in commits] == [1, 199] and all(s >= 0 for s, _ in commits)
    assert len(store.read_after(0, 1000)) == 200


def test_max_batch_splits_transactions(store: Store) -> None:
    gated = GatedStore(store)
    gated.gate.set()

    async def main() -> None:
        writer = GroupCommitWriter(gated, max_batch=50)  # type: ignore[arg-type]
        await asyncio.gather(*(writer.submit(make_records(1)) for _ in range(300)))
        await writer.close()

    asyncio.run(main())
    assert sum(gated.calls) == 300 and max(gated.calls) <= 50


def test_durable_submit_returns_only_after_commit(store: Store) -> None:
    gated = GatedStore(store)

    async def main() -> None:
        writer = GroupCommitWriter(gated, "durable")  # type: ignore[arg-type]
        records = make_records(3)
        task = asyncio.create_task(writer.submit(records))
        await _until(gated.entered.is_set, "commit started")
        await asyncio.sleep(0.01)
        assert not task.done()  # commit blocked -> not acknowledged
        gated.gate.set()
        await task
        assert [r.id for r in store.read_after(0, 10)] == [r.id for r in records]
        await writer.close()

    asyncio.run(main())


def test_durable_submit_raises_when_commit_fails(store: Store) -> None:
    gated = GatedStore(store)
    gated.fail = RuntimeError("disk full")
    gated.gate.set()
    errors: list[int] = []

    async def main() -> None:
        writer = GroupCommitWriter(gated, on_error=lambda e, n: errors.append(n))  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="disk full"):
            await writer.submit(make_records(2))
        gated.fail = None
        await writer.submit(make_records(1))  # the writer keeps working afterwards
        await writer.close()

    asyncio.run(main())
    assert errors == [2] and len(store.read_after(0, 10)) == 1


def test_async_mode_acknowledges_before_commit_and_close_flushes(store: Store) -> None:
    gated = GatedStore(store)

    async def main() -> None:
        writer = GroupCommitWriter(gated, "async", max_delay_ms=5)  # type: ignore[arg-type]
        for _ in range(10):
            await writer.submit(make_records(1))  # returns although nothing can commit
        assert store.read_after(0, 100) == []  # the loss window: acked, not committed
        gated.gate.set()
        await writer.close()  # flushes

    asyncio.run(main())
    assert len(store.read_after(0, 100)) == 10


def test_async_mode_retries_failed_commits(store: Store) -> None:
    gated = GatedStore(store)
    gated.fail = RuntimeError("db down")
    gated.gate.set()
    errors: list[int] = []

    async def main() -> None:
        writer = GroupCommitWriter(
            gated, "async", max_delay_ms=1, on_error=lambda e, n: errors.append(n)
        )  # type: ignore[arg-type]
        await writer.submit(make_records(4))
        await _until(lambda: len(errors) >= 2, "retried")
        gated.fail = None
        await writer.flush()
        await writer.close()

    asyncio.run(main())
    assert len(store.read_after(0, 100)) == 4  # acknowledged records were not dropped


def test_async_mode_commits_without_close(store: Store) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(store, "async", max_delay_ms=1)
        await writer.submit(make_records(2))
        await _until(lambda: len(store.read_after(0, 10)) == 2, "committed within the delay")
        await writer.close()

    asyncio.run(main())
    assert len(store.read_after(0, 10)) == 2


@pytest.mark.parametrize("mode", ["durable", "async"])
def test_backpressure_blocks_instead_of_dropping(store: Store, mode: str) -> None:
    gated = GatedStore(store)

    async def main() -> None:
        writer = GroupCommitWriter(gated, mode, max_pending=10, max_delay_ms=1)  # type: ignore[arg-type]
        first = [asyncio.create_task(writer.submit(make_records(1))) for _ in range(10)]
        await _until(lambda: writer.pending == 10, "queue full")
        blocked = asyncio.create_task(writer.submit(make_records(1)))
        await asyncio.sleep(0.05)
        assert not blocked.done() and writer.pending == 10  # waits for room
        gated.gate.set()
        await asyncio.gather(*first, blocked)
        await writer.close()

    asyncio.run(main())
    assert len(store.read_after(0, 100)) == 11


def test_submit_after_close_raises(store: Store) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(store)
        await writer.submit(make_records(1))
        await writer.close()
        await writer.close()  # idempotent
        with pytest.raises(RuntimeError):
            await writer.submit(make_records(1))

    asyncio.run(main())
    with pytest.raises(ValueError):
        GroupCommitWriter(store, "sometimes")  # type: ignore[arg-type]
