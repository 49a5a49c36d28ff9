"""Code run in child processes by the store tests (must be importable by ``spawn``)."""

from __future__ import annotations

import asyncio
import sys

from service.store import GroupCommitWriter, open_store
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
        while True:
            record = make_records(1, model="kill")[0]
            await writer.submit([record])
            sys.stdout.write(record.id + "\n")  # acknowledged = committed
            sys.stdout.flush()

    await asyncio.gather(*(request(i) for i in range(16)))


if __name__ == "__main__":  # python store_workers.py URL: ack records until killed
    asyncio.run(_ack_forever(sys.argv[1]))
