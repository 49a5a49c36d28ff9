"""Adaptive batching: concurrent requests for one model version merged into one model call.

One :class:`AdaptiveBatcher` per loaded model version per gateway worker (shadow and canary
arms are other versions, so they batch apart). It works as BentoML's adaptive batching and
Triton's dynamic batcher do, without making a lone request wait:

- a request reaching an **idle** model is called at once, alone;
- requests arriving **while a call runs** queue; when it ends, the queue is dispatched as one
  call of at most ``max_batch_size`` rows (requests are never split: one larger than that is
  called alone), in arrival order. A batch that is not full may wait for more until its
  oldest request has queued ``max_wait_ms`` (for a heavy model the previous call is longer
  than that, so it does not wait at all);
- the call runs in a one-thread executor of the batcher, so the event loop keeps accepting,
  validating and logging requests while the model computes;
- the answer is split back per request, in order (``split``); when a merged call fails, its
  requests are retried one by one in the same executor job, so only a request the model
  itself cannot answer fails (with the 500 ``model_error`` it got before batching), never
  the requests it happened to share a call with.

The batcher is generic in what a request carries (``merge``, ``split`` and ``size``): rows
today; a columnar frame merges the same way.

>>> import asyncio
>>> calls = []
>>> def double(rows):
...     calls.append(len(rows))
...     return [2 * r for r in rows]
>>> batcher = AdaptiveBatcher(double, merge=lambda parts: [r for p in parts for r in p],
...                           split=lambda answer, sizes: list(chunks(answer, sizes)))
>>> async def clients():
...     return await asyncio.gather(*(batcher.submit([i, i + 1]) for i in range(0, 8, 2)))
>>> asyncio.run(clients())
[[0, 2], [4, 6], [8, 10], [12, 14]]
>>> calls  # all four queued before the idle model's first call began: one call
[8]
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

X = TypeVar("X")  # what one request carries (its rows)
P = TypeVar("P")  # the model's answer to it


@dataclass
class BatchStats:
    """What a batcher did so far (this worker): merged calls, requests and rows."""

    calls: int = 0
    requests: int = 0
    rows: int = 0
    largest: int = 0  # rows of the largest call
    retried: int = 0  # merged calls that failed and were retried one request at a time

    def as_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "requests": self.requests, "rows": self.rows,
                "largest_call_rows": self.largest, "failed_merged_calls": self.retried,
                "rows_per_call": round(self.rows / self.calls, 2) if self.calls else None}


@dataclass
class _Pending(Generic[X, P]):
    inputs: X
    size: int
    future: asyncio.Future[P]
    arrived: float


def chunks(items: Sequence[Any], sizes: Sequence[int]) -> Iterator[Sequence[Any]]:
    """``items`` cut into consecutive parts of ``sizes``; all of them, exactly.

    >>> list(chunks([1, 2, 3], [1, 2]))
    [[1], [2, 3]]
    """
    if len(items) != sum(sizes):
        raise ValueError(f"the model answered {len(items)} rows for {sum(sizes)}")
    start = 0
    for size in sizes:
        yield items[start:start + size]
        start += size


class AdaptiveBatcher(Generic[X, P]):
    """Merges concurrent :meth:`submit` calls into calls of ``call``; see the module doc."""

    def __init__(
        self,
        call: Callable[[X], P],
        *,
        merge: Callable[[list[X]], X],
        split: Callable[[P, list[int]], list[P]],
        size: Callable[[X], int] = len,  # type: ignore[assignment]  # X is sized in practice
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        name: str = "model",
    ) -> None:
        if max_batch_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size must be >= 1 and max_wait_ms >= 0")
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.name = name
        self.stats = BatchStats()
        self._call = call
        self._merge = merge
        self._split = split
        self._size = size
        self._queue: deque[_Pending[X, P]] = deque()
        self._queued_rows = 0
        self._task: asyncio.Task[None] | None = None  # the dispatcher, while there is work
        self._filled: asyncio.Event | None = None  # set when a gathering batch is full
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    async def submit(self, inputs: X) -> P:
        """The model's answer to ``inputs``, computed in a call shared with the requests
        queued beside it; raises what the model raised on ``inputs``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[P] = loop.create_future()
        size = self._size(inputs)
        self._queue.append(_Pending(inputs, size, future, loop.time()))
        self._queued_rows += size
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._dispatch())  # idle: called at once
        elif self._filled is not None and self._queued_rows >= self.max_batch_size:
            self._filled.set()
        return await future

    def close(self) -> None:
        """Stop the executor thread once the queued requests are answered."""
        self._closing = True
        if self._task is None or self._task.done():
            self._shutdown()

    # -- the dispatcher ------------------------------------------------------------------
    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        first = True  # the model was idle: no waiting
        try:
            while self._queue:
                if not first:
                    await self._gather(loop)
                first = False
                batch = self._take()
                if batch:
                    await self._run(loop, batch)
        finally:
            if self._closing:
                self._shutdown()

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let a batch that is not full fill until its oldest request waited max_wait_ms."""
        if self._queued_rows >= self.max_batch_size or self.max_wait_ms <= 0:
            return
        remaining = self._queue[0].arrived + self.max_wait_ms / 1000.0 - loop.time()
        if remaining <= 0:
            return
        self._filled = asyncio.Event()
        try:
            with suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._filled.wait()
        finally:
            self._filled = None

    def _take(self) -> list[_Pending[X, P]]:
        """The next batch: queued requests in order, whole, up to max_batch_size rows."""
        batch: list[_Pending[X, P]] = []
        rows = 0
        queue = self._queue
        while queue:
            item = queue[0]
            if not item.future.done() and batch and rows + item.size > self.max_batch_size:
                break
            queue.popleft()
            self._queued_rows -= item.size
            if item.future.done():  # its client went away while it queued
                continue
            batch.append(item)
            rows += item.size
            if rows >= self.max_batch_size:
                break
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[X, P]]) -> None:
        try:
            outcomes = await loop.run_in_executor(
                self._pool(), self._compute, [p.inputs for p in batch], [p.size for p in batch]
            )
        except BaseException as exc:  # the executor or the loop is going away
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc if isinstance(exc, Exception) else
                                           RuntimeError(f"batch of {self.name} interrupted"))
            raise
        for p, (answer, error) in zip(batch, outcomes, strict=True):
            if p.future.done():
                continue
            if error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(answer)  # type: ignore[arg-type]  # set when no error

    def _compute(
        self, inputs: list[X], sizes: list[int]
    ) -> list[tuple[P | None, Exception | None]]:
        """In the executor thread: one merged call, or one call per request if it fails."""
        stats = self.stats
        stats.calls += 1
        stats.requests += len(inputs)
        stats.rows += sum(sizes)
        stats.largest = max(stats.largest, sum(sizes))
        if len(inputs) == 1:
            return [self._one(inputs[0])]
        try:
            parts = self._split(self._call(self._merge(inputs)), sizes)
        except Exception as exc:
            stats.retried += 1
            log.info("a merged call of %s (%d requests, %d rows) failed (%r): retrying them "
                     "one by one", self.name, len(inputs), sum(sizes), exc)
            return [self._one(x) for x in inputs]
        return [(part, None) for part in parts]

    def _one(self, inputs: X) -> tuple[P | None, Exception | None]:
        try:
            return self._call(inputs), None
        except Exception as exc:
            return None, exc

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"batch-{self.name}")
        return self._executor

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
