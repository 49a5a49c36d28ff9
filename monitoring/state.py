"""Drift state with hysteresis, and snapshot serialisation."""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["DriftState", "SnapshotVersionError", "dumps", "loads", "SNAPSHOT_VERSION"]

# 3: CUSUM streams keep their charts in their detector group's bank; 2: one StreamDetector
# per stream (monitoring.detectors); 1: a shared CUSUM bank
SNAPSHOT_VERSION = 3
_MAGIC = b"DGMON"


class SnapshotVersionError(ValueError):
    """A snapshot written by an incompatible version of the monitor."""


@dataclass
class DriftState:
    """Alarm state of one monitored stream.

    A stream becomes *drift active* at an alarm and stays active until (hysteresis) no alarm
    has fired for ``resolve_after`` records **and** its recent window matches the reference
    again (window test p-value above ``resolve_p``). Alarms while active are counted but
    raise no new event, so alerts neither flap nor stay on forever.

    Examples
    --------
    >>> s = DriftState()
    >>> s.alarm(10), s.alarm(50), s.active
    (True, False, True)
    >>> s.try_resolve(seen=600, p_value=0.5, resolve_after=1000, resolve_p=0.01)
    False
    >>> s.try_resolve(seen=1100, p_value=0.5, resolve_after=1000, resolve_p=0.01)
    True
    """

    active: bool = False
    alarms: int = 0
    episodes: int = 0
    last_alarm: int = -1
    active_since: int = -1

    def alarm(self, seen: int) -> bool:
        """Record an alarm at record index ``seen``; return whether a new episode starts."""
        self.alarms += 1
        self.last_alarm = seen
        if self.active:
            return False
        self.active = True
        self.active_since = seen
        self.episodes += 1
        return True

    def try_resolve(self, seen: int, p_value: float, resolve_after: int, resolve_p: float) -> bool:
        """End the episode if quiet long enough and the window matches; return whether ended."""
        if not self.active or seen - self.last_alarm < resolve_after or p_value < resolve_p:
            return False
        self.active = False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view."""
        return {"drift_active": self.active, "alarms": self.alarms, "episodes": self.episodes,
                "last_alarm_record": self.last_alarm}


def dumps(obj: Any) -> bytes:
    """Serialise a monitor (pickle, compressed, with a version header).

    Snapshots are trusted data written by the service itself: never restore one from an
    untrusted source (unpickling runs code).
    """
    return _MAGIC + bytes([SNAPSHOT_VERSION]) + zlib.compress(
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), 1
    )


def loads(blob: bytes) -> Any:
    """Inverse of :func:`dumps`.

    Examples
    --------
    >>> loads(dumps({"a": [1, 2]}))
    {'a': [1, 2]}
    """
    if not blob.startswith(_MAGIC):
        raise ValueError("not a driftgate monitor snapshot")
    version = blob[len(_MAGIC)]
    if version != SNAPSHOT_VERSION:
        raise SnapshotVersionError(f"unsupported snapshot version {version}")
    return pickle.loads(zlib.decompress(blob[len(_MAGIC) + 1 :]))
