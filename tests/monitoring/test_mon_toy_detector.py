"""Adding a detector takes one module and one registry line (README, "Adding a detector")."""

from __future__ import annotations

import importlib
import textwrap

import numpy as np

from monitoring import ModelMonitor, MonitorConfig
from monitoring.benchmark import _draw, records, synthetic_model
from monitoring.detectors.registry import DETECTORS
from tests.monitoring.test_mon_detector_contract import check_contract

TOY = '''
"""A toy detector: the standardised sum of the last ``window`` values."""

from __future__ import annotations

import math
from collections import deque
from statistics import NormalDist
from typing import Any

from monitoring.detectors.base import Alarm, Budget, StreamDetector


class WindowMean(StreamDetector):
    name = "window_mean"
    kind = "numeric"

    def __init__(self, threshold: float, window: int = 50) -> None:
        self.threshold_ = threshold
        self.window = window
        self._reset()

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> WindowMean:
        return cls(NormalDist().inv_cdf(1.0 - (budget.rate or 1e-6) / 2.0))

    def _reset(self) -> None:
        self._values: deque[float] = deque(maxlen=self.window)
        self._fired = math.nan

    def update_many(self, values: Any) -> list[Alarm]:
        alarms = []
        self._fired = math.nan
        for i, x in enumerate(list(values)):
            if x != x:
                continue
            self._values.append(float(x))
            stat = self.statistic
            if abs(stat) > self.threshold_:
                alarms.append(Alarm(i, self.name, stat, self.threshold_))
                self._reset()
                self._fired = abs(stat)
        return alarms

    @property
    def statistic(self) -> float:
        if len(self._values) < self.window:
            return 0.0
        return sum(self._values) / math.sqrt(self.window)

    @property
    def threshold(self) -> float:
        return self.threshold_

    @property
    def score(self) -> float:
        if self._fired == self._fired:
            return self._fired / self.threshold_
        return abs(self.statistic) / self.threshold_
'''


def test_a_detector_added_by_one_module_and_one_registry_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "toy_window_mean.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    # the one line: its name and where it lives, in the registry's numeric section
    monkeypatch.setitem(DETECTORS["numeric"], "window_mean", "toy_window_mean:WindowMean")

    check_contract("numeric", "window_mean", 32)  # the contract every detector meets

    rng = np.random.default_rng(4)
    card, ref = synthetic_model(2, 2000, rng)
    config = MonitorConfig(numeric_detector="window_mean", multivariate=False, seed=2)
    x = _draw(2000, 2, np.random.default_rng(5), True)
    x[1000:, 0] += 1.0
    monitor = ModelMonitor(card, ref, config)
    drift = [(e.feature, e.detector, e.record_id) for e in monitor.update_many(records(x))
             if e.kind == "feature_drift"]
    assert drift[0] == ("x0", "window_mean", "r1024")
    assert monitor.status().features["x0"].method == "window_mean"
