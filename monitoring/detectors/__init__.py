"""Drift detectors behind one contract (:class:`StreamDetector`), found through a registry.

See :mod:`monitoring.detectors.base` for the contract and :mod:`monitoring.detectors.registry`
for the names.
"""

from __future__ import annotations

from monitoring.detectors.base import Alarm, AlarmRun, Budget, DetectorGroup, StreamDetector
from monitoring.detectors.registry import DETECTORS, detector_class

__all__ = ["DETECTORS", "Alarm", "AlarmRun", "Budget", "DetectorGroup", "StreamDetector",
           "detector_class"]
