"""Monitoring partitions: which lease, checkpoint and status key monitors a model.

``DRIFTGATE_MONITOR_PARTITIONS=N`` splits the models over N partitions by a stable hash of
the model name (CRC-32, the same in every process and release), or by an explicit
assignment (``DRIFTGATE_MONITOR_PARTITION_MAP``). Each partition has its own lease (one
active monitor process), its own consumer checkpoint and its own status key. With one
partition the names are those of a single monitor (consumer ``monitor``), so a store
monitored before partitions existed resumes from its checkpoint.

>>> p = Partitioning(2, {"churn": 1})
>>> p.partition_of("churn"), p.lease_name(1), p.status_key(1)
(1, 'monitor:1/2', 'monitor:status:partition:1/2')
>>> Partitioning(1).lease_name(0), Partitioning(1).status_key(0)
('monitor', 'monitor:status')
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.config import Settings
from service.monitor_runner import CONSUMER, KV_MONITOR_STATUS

__all__ = ["MEMBER_PREFIX", "Partitioning"]

#: Lease-name prefix of the monitor processes' membership heartbeats (for the fair share).
MEMBER_PREFIX = "monitor-member:"


@dataclass(frozen=True)
class Partitioning:
    """``count`` partitions; ``assignment`` pins model names to partitions."""

    count: int = 1
    assignment: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("monitor partitions must be at least 1")
        bad = {m: p for m, p in self.assignment.items() if not 0 <= p < self.count}
        if bad:
            raise ValueError(f"partition assignment outside 0..{self.count - 1}: {bad}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Partitioning:
        return cls(settings.monitor_partitions, dict(settings.monitor_partition_map))

    def partition_of(self, model: str) -> int:
        if model in self.assignment:
            return self.assignment[model]
        return zlib.crc32(model.encode()) % self.count

    def owns(self, partition: int, model: str) -> bool:
        return self.partition_of(model) == partition

    def lease_name(self, partition: int) -> str:
        return CONSUMER if self.count == 1 else f"{CONSUMER}:{partition}/{self.count}"

    def consumer(self, partition: int) -> str:
        """The checkpoint's consumer name (the lease's name)."""
        return self.lease_name(partition)

    def status_key(self, partition: int) -> str:
        if self.count == 1:
            return KV_MONITOR_STATUS
        return f"{KV_MONITOR_STATUS}:partition:{partition}/{self.count}"
