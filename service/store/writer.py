"""Async group-commit writer for the gateway's event loop.

``await writer.submit(records)`` queues records (or blocks of records); one flusher task
hands everything queued to a single background thread, which appends it in one
transaction. While a commit runs, new submissions accumulate and go into the next one,
so N concurrent requests cost far fewer than N transactions and the event loop never
blocks on the database.

Modes:

* ``durable`` (default): ``submit`` returns once its records are committed, and raises if
  the commit failed (the caller should then answer 5xx).
* ``async``: ``submit`` returns as soon as the records are queued; they are committed
  within about ``max_delay_ms`` plus one commit duration. **Loss window:** records that
  were acknowledged but not yet committed are lost if the process dies (SIGKILL, OOM,
  power). Failed commits are retried with backoff (reported through ``on_error``), never
  dropped.

Backpressure: at most ``max_pending`` records are queued or in flight; beyond that
``submit`` waits for room (a single batch larger than ``max_pending`` is admitted alone).
Nothing is ever dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from service.store.base import LogStore
from service.store.blocks import RecordBlock, row_count
from service.store.records import PredictionRecord

Item = PredictionRecord | RecordBlock

__all__ = ["GroupCommitWriter"]

log = logging.getLogger(__name__)

OnCommit = Callable[[float, int], None]
OnError = Callable[[BaseException, int], None]


class GroupCommitWriter:
    """Coalesces concurrent ``submit`` calls into group commits (see module docstring).

    ``on_commit(seconds, n_records)`` is called on the event loop after every successful
    commit (feed it to a histogram of log write seconds and batch sizes); ``on_error(exc,
    n_records)`` after every failed one. Counters: ``commits``, ``records_committed``,
    ``pending``.
    """

    def __init__(
        self,
        store: LogStore,
        mode: Literal["durable", "async"] = "durable",
        *,
        max_pending: int = 10_000,
        max_batch: int = 5_000,
        max_delay_ms: float = 50.0,
        on_commit: OnCommit | None = None,
        on_error: OnError | None = None,
    ) -> None:
        if mode not in ("durable", "async"):
            raise ValueError("mode must be 'durable' or 'async'")
        if max_pending < 1 or max_batch < 1:
            raise ValueError("max_pending and max_batch must be positive")
        self.store = store
        self.mode = mode
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.max_delay = max_delay_ms / 1000.0
        self.on_commit = on_commit
        self.on_error = on_error
        self.commits = 0
        self.records_committed = 0
        self.pending = 0  # records queued or being committed
        self._queue: deque[tuple[Sequence[Item], int, asyncio.Future[None] | None]] = deque()
        self._queued = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._wakeup: asyncio.Event | None = None
        self._room: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._waiting = 0  # submitters blocked by backpressure
        self._flushing = 0  # flush() callers waiting for pending == 0

    # -- public API --------------------------------------------------------------------
    async def submit(self, records: Sequence[Item]) -> None:
        """Queue ``records`` (records and/or blocks); in durable mode wait until they are
        committed. Backpressure and batch sizes count records, a block its rows."""
        if self._closing:
            raise RuntimeError("writer is closed")
        if not records:
            return
        self._ensure_started()
        assert self._room is not None and self._wakeup is not None
        n = row_count(records)
        if self.pending + n <= self.max_pending and not self._waiting:
            self.pending += n  # room, and nobody queued before us: no lock needed
        else:
            self._waiting += 1
            try:
                async with self._room:
                    await self._room.wait_for(
                        lambda: self.pending == 0 or self.pending + n <= self.max_pending
                    )
                    self.pending += n
            finally:
                self._waiting -= 1
        fut: asyncio.Future[None] | None = None
        if self.mode == "durable":
            fut = asyncio.get_running_loop().create_future()
        self._queue.append((records, n, fut))
        self._queued += n
        self._wakeup.set()
        if fut is not None:
            await fut

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed."""
        if self._task is None:
            return
        assert self._room is not None and self._wakeup is not None
        self._wakeup.set()
        self._flushing += 1
        try:
            async with self._room:
                await self._room.wait_for(lambda: self.pending == 0 or self._task_dead())
        finally:
            self._flushing -= 1

    async def close(self) -> None:
        """Flush, stop the flusher and the background thread. Idempotent."""
        if self._closed:
            return
        self._closing = True
        if self._task is not None:
            assert self._wakeup is not None
            self._wakeup.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
        self._closed = True

    # -- internals ---------------------------------------------------------------------
    def _task_dead(self) -> bool:
        return self._task is not None and self._task.done()

    def _ensure_started(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._room = asyncio.Condition()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="store-group-commit"
            )

    def _take_batch(self) -> tuple[list[Item], list[asyncio.Future[None]], int]:
        records: list[Item] = []
        futures: list[asyncio.Future[None]] = []
        rows = 0
        while self._queue and (not records or rows + self._queue[0][1] <= self.max_batch):
            recs, n, fut = self._queue.popleft()
            records.extend(recs)
            rows += n
            if fut is not None:
                futures.append(fut)
        self._queued -= rows
        return records, futures, rows

    async def _linger(self) -> None:
        """Async mode: wait up to max_delay for a fuller batch (not when closing)."""
        assert self._wakeup is not None
        deadline = time.monotonic() + self.max_delay
        while not self._closing and self._queued < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    async def _run(self) -> None:
        assert self._wakeup is not None and self._room is not None
        loop = asyncio.get_running_loop()
        backoff = 0.05
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.mode == "async":
                await self._linger()
            records, futures, n = self._take_batch()
            while True:
                start = time.perf_counter()
                try:
                    await loop.run_in_executor(self._executor, self.store.append, records)
                except Exception as exc:  # noqa: BLE001 - reported, then retried or raised
                    log.warning("prediction log commit of %d records failed: %r", n, exc)
                    if self.on_error is not None:
                        _call(self.on_error, exc, n)
                    if self.mode == "durable":
                        for fut in futures:
                            if not fut.done():
                                fut.set_exception(exc)
                        break
                    await asyncio.sleep(backoff)  # async mode: acknowledged, so retry
                    backoff = min(backoff * 2, 5.0)
                    continue
                seconds = time.perf_counter() - start
                backoff = 0.05
                self.commits += 1
                self.records_committed += n
                for fut in futures:
                    if not fut.done():
                        fut.set_result(None)
                if self.on_commit is not None:
                    _call(self.on_commit, seconds, n)
                break
            self.pending -= n
            if self._waiting or self._flushing:
                async with self._room:
                    self._room.notify_all()


def _call(callback: Callable[..., None], *args: object) -> None:
    """Run a metrics callback; its failure must never stall the flusher."""
    try:
        callback(*args)
    except Exception:  # noqa: BLE001
        log.exception("GroupCommitWriter callback failed")
