"""DDM (river) on a model's 0/1 error stream: the error rate rising above its minimum."""

from __future__ import annotations

import math

from river import drift, stats

from monitoring.detectors.base import RiverDetector, below_alarm

__all__ = ["DDM"]


class DDM(RiverDetector):
    """river's ``DDM`` (Drift Detection Method) at its default setting.

    Fires when ``p + s > p_min + drift_threshold * s_min`` (``p`` the error rate so far, ``s``
    its standard error, ``p_min, s_min`` where ``p + s`` was lowest). river decides; the
    score is ``(p + s - p_min) / (drift_threshold * s_min)``, followed from river's public
    parameters and ``stats.Mean`` (0 during the warm start).

    Examples
    --------
    >>> import numpy as np
    >>> from monitoring.detectors.base import Budget
    >>> rng = np.random.default_rng(0)
    >>> det = DDM.calibrate(None, Budget(None))
    >>> errors = (rng.random(2000) < np.where(np.arange(2000) < 1000, 0.1, 0.4)).astype(float)
    >>> [a.row for a in det.update_many(errors)]
    [1041]
    """

    name = "ddm"
    kind = "errors"
    skip_nan = False

    def __init__(self, warm_start: int = 30, drift_threshold: float = 3.0) -> None:
        self.warm_start = int(warm_start)
        self.drift_threshold = float(drift_threshold)
        self._reset()

    def _make(self) -> drift.binary.DDM:
        return drift.binary.DDM(warm_start=self.warm_start, drift_threshold=self.drift_threshold)

    def _clear(self) -> None:
        self._p = stats.Mean()
        self._p_min = self._s_min = math.nan
        self._ps_min = math.inf
        self._ratio = 0.0

    def _follow(self, x: float) -> None:
        self._p.update(x)
        p, n = self._p.get(), self._p.n
        s = math.sqrt(p * (1 - p) / n)
        self._ratio = 0.0
        if n > self.warm_start:
            if p + s <= self._ps_min:
                self._p_min, self._s_min, self._ps_min = p, s, p + s
            margin = self.drift_threshold * self._s_min
            self._ratio = (p + s - self._p_min) / margin if margin > 0 else (
                math.inf if p + s > self._p_min else 0.0)

    @property
    def statistic(self) -> float:
        """``(p + s - p_min) / s_min``: the rise in standard errors."""
        return self._ratio * self.drift_threshold

    @property
    def threshold(self) -> float:
        return self.drift_threshold

    @property
    def score(self) -> float:
        return below_alarm(self._ratio, self._det.drift_detected)
