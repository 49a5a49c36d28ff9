"""The monitor's position as ``/monitoring/status`` shows it, one partition or many.

With one partition, ``monitor`` is what the monitor publishes (offsets, lag, time); with N,
the same fields over all partitions (the lowest offsets and times, the summed record lag,
the largest lag in seconds), so clients read one shape either way. ``partitions`` adds each
partition's own position and which process holds its lease (``holder``, fencing ``token``,
``expires_in``; no live holder: ``null``).
"""

from __future__ import annotations

from typing import Any, Protocol

from service.partitions import Partitioning
from service.store.base import KeyValueStore, LeaseStore

__all__ = ["read_monitor_status"]


class StatusStore(KeyValueStore, LeaseStore, Protocol):
    """What the status read uses."""


def read_monitor_status(store: StatusStore, partitioning: Partitioning) -> dict[str, Any]:
    leases = {row.name: row for row in store.lease_list("monitor")}
    partitions = []
    for partition in range(partitioning.count):
        status = dict(store.kv_get(partitioning.status_key(partition)) or {})
        lease = leases.get(partitioning.lease_name(partition))
        live = lease if lease is not None and lease.expires_in > 0 else None
        status.update(partition=partition, holder=live.holder if live else None,
                      token=lease.token if lease else None,
                      expires_in=round(live.expires_in, 3) if live else None)
        partitions.append(status)
    if partitioning.count == 1:
        monitor = {k: v for k, v in partitions[0].items()
                   if k not in ("partition", "holder", "token", "expires_in")}
    else:
        monitor = _combined(partitions)
    return {**monitor, "partitions": partitions}


def _combined(partitions: list[dict[str, Any]]) -> dict[str, Any]:
    seen = [p for p in partitions if "offset" in p]
    if len(seen) < len(partitions):  # a partition never checkpointed: nothing processed yet
        return {}
    return {
        "offset": min(p["offset"] for p in seen),
        "label_offset": min(p["label_offset"] for p in seen),
        "updated_at": min(p["updated_at"] for p in seen),
        "lag_records": sum(p["lag_records"] for p in seen),
        "lag_seconds": max(p["lag_seconds"] for p in seen),
    }
