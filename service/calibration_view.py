"""What a model version's reference sample buys: the drift thresholds calibrated on it, as
``GET /models/{name}`` shows them (a small reference gives wide thresholds, slow detection),
with each stream's tolerance, the smallest mean shift it catches within 1,000 records and the
diagnostics of charts that cannot fire, and the scale each numeric stream is standardised with."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from monitoring.detectors.cusum import Cusum
from monitoring.names import json_value
from service.config import get_settings, monitor_config
from service.monitor_runner import build_monitor


@lru_cache(maxsize=64)
def calibration(model: str, version: str) -> dict[str, Any]:
    """Reference size and, per monitored stream, its detector and calibrated threshold
    (in the detector's own units) at the configured false-alarm budget. Blocking, cached."""
    monitor = build_monitor(model, version, monitor_config(get_settings()))
    status = monitor.status()
    shifts = {s.name: s.detector.detectable_shift() for s in monitor.numeric
              if isinstance(s.detector, Cusum)}
    return {
        "expected_run_time": status.expected_run_time,
        "reference": status.reference,
        "streams": {
            name: {"kind": s.kind, "method": s.method, "threshold": s.to_dict()["threshold"],
                   **{k: s.details[k] for k in ("tolerance", "scale", "diagnostics")
                      if k in s.details},
                   **({"detectable_shift_sd": json_value(round(shifts[name], 4))}
                      if name in shifts else {})}
            for name, s in status.streams.items()
        },
    }
