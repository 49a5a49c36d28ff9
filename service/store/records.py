"""The prediction record (see docs/contracts.md) and time-ordered prediction ids."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PredictionRecord", "new_prediction_id", "new_prediction_ids"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_prediction_ids(n: int) -> list[str]:
    """``n`` ids as :func:`new_prediction_id` makes them, with one lock, one urandom call
    and one hex encoding (the counter carries into the next millisecond as there)."""
    global _last_ms, _counter
    if n <= 0:
        return []
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
        base_ms, first = _last_ms, _counter
        last = first + n - 1
        _last_ms, _counter = base_ms + last // 4096, last % 4096
    total = first + np.arange(n, dtype=np.uint64)
    high = (np.uint64(base_ms) + total // np.uint64(4096)) << np.uint64(16)
    high |= np.uint64(0x7000) | (total % np.uint64(4096))
    low = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) & np.uint64((1 << 62) - 1)
    low |= np.uint64(0b10 << 62)
    text = np.stack([high, low], axis=1).astype(">u8").tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def new_prediction_id() -> str:
    """Return a UUIDv7 (RFC 9562) as 32 lowercase hex characters.

    48 bits of unix milliseconds, then a 12-bit counter (method 1 of RFC 9562 6.2, so ids
    made by one process are strictly increasing, also within one millisecond), then 62
    random bits from ``os.urandom`` (fork-safe: two processes never share them).
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF  # leave headroom
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return uuid.UUID(int=value).hex


@dataclass(slots=True)
class PredictionRecord:
    """One logged prediction; ``offset`` is assigned by the store on append."""

    model: str
    version: str
    features: dict[str, Any]
    prediction: Any
    id: str = field(default_factory=new_prediction_id)
    ts: float = field(default_factory=time.time)
    arm: str = "default"
    probabilities: dict[str, float] | None = None
    latency_ms: float = 0.0
    request_id: str | None = None
    trace_id: str | None = None
    label: Any = None
    label_ts: float | None = None
    offset: int | None = None
