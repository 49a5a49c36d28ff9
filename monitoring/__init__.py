"""driftgate's pure, synchronous monitoring core.

Calibrated streaming drift detectors (numeric, categorical, prediction, multivariate), window
statistics, data quality and performance tracking. Imports nothing from ``service`` or
``models``: the model card is a plain dict, the reference sample a pandas DataFrame.
"""

from __future__ import annotations

from monitoring.config import MonitorConfig
from monitoring.events import MonitorEvent
from monitoring.monitor import ModelMonitor

__all__ = ["ModelMonitor", "MonitorConfig", "MonitorEvent"]
