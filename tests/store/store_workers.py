"""Code run in child processes by the store tests (must be importable by ``spawn``)."""

from __future__ import annotations

import asyncio
import sys
import time

from service.store import GroupCommitWriter, open_store
from service.store.blocks import RecordBlock
from service.store.records import new_prediction_ids
from tests.store.store_helpers import make_records


def append_worker(url: str, worker: int, batches: int, batch_size: int) -> list[str]:
    """Open the store (concurrently with the other workers) and append small batches."""
    store = open_store(url)
    ids: list[str] = []
    try:
        for _ in range(batches):
            records = make_records(batch_size, model=f"w{worker}")
            store.append(records)
            ids.extend(r.id for r in records)
    finally:
        store.close()
    return ids


def routing_worker(url: str, worker: int, changes: int) -> None:
    """Change the routing of model ``w<worker>`` ``changes`` times (compare-and-set)."""
    store = open_store(url)
    try:
        for i in range(changes):
            revision = store.routing_read().revisions.get(f"w{worker}", 0)
            store.routing_write({f"w{worker}": {"default": str(i)}}, actor=f"w{worker}",
                                action="promote", expected={f"w{worker}": revision})
    finally:
        store.close()


async def _ack_forever(url: str) -> None:
    store = open_store(url)
    writer = GroupCommitWriter(store, "durable")

    async def request(i: int) -> None:
        while True:  # odd requests log a 16-row block, as the gateway logs a batch request
            items = [make_records(1, model="kill")[0]] if i % 2 == 0 else [_block(16)]
            await writer.submit(items)
            ids = [r.id for r in items] if i % 2 == 0 else items[0].ids
            sys.stdout.write("".join(rid + "\n" for rid in ids))  # acknowledged = committed
            sys.stdout.flush()

    await asyncio.gather(*(request(i) for i in range(16)))


def _block(n: int) -> RecordBlock:
    return RecordBlock("kill", "1", "default", time.time(), new_prediction_ids(n),
                       {"x": [float(i) for i in range(n)]}, list(range(n)), request_id="batch")


if __name__ == "__main__":  # python store_workers.py URL: ack records until killed
    asyncio.run(_ack_forever(sys.argv[1]))
