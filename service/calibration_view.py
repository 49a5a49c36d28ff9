"""What a model version's reference sample buys: the drift thresholds calibrated on it, as
``GET /models/{name}`` shows them (a small reference gives wide thresholds, slow detection)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from service.config import get_settings, monitor_config
from service.monitor_runner import build_monitor


@lru_cache(maxsize=64)
def calibration(model: str, version: str) -> dict[str, Any]:
    """Reference size and, per monitored stream, its detector and calibrated threshold
    (in the detector's own units) at the configured false-alarm budget. Blocking, cached."""
    monitor = build_monitor(model, version, monitor_config(get_settings()))
    status = monitor.status()
    return {
        "expected_run_time": status.expected_run_time,
        "streams": {
            name: {"kind": s.kind, "method": s.method, "threshold": s.to_dict()["threshold"]}
            for name, s in status.streams.items()
        },
    }
