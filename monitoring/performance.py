"""Rolling model performance and concept drift on the error stream, once labels arrive."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from monitoring.detectors import Budget, StreamDetector, detector_class
from monitoring.detectors.registry import names

__all__ = ["CONCEPT_DETECTORS", "PerformanceTracker"]

#: Valid names for the concept-drift detector on the error stream.
CONCEPT_DETECTORS: tuple[str, ...] = names("errors")

# Metrics checked against the card's baselines, in the order their events are reported.
_CLASSIFICATION_METRICS = ("accuracy", "f1")  # absolute tolerance, lower is worse
_REGRESSION_METRICS = ("mae", "rmse")  # relative tolerance, higher is worse


class PerformanceTracker:
    """Rolling accuracy / macro-F1 (classification) or MAE / RMSE (regression).

    An error stream feeds a river detector (one of :data:`CONCEPT_DETECTORS`: ``"adwin"``,
    ``"ddm"`` or ``"hddm_a"``). For classification the stream is the 0/1 misclassification
    indicator, for every detector. For regression ADWIN gets the absolute error scaled by the
    reference MAE (``abs_error / error_scale``); DDM and HDDM_A are binary detectors, so they get
    the 0/1 indicator ``abs_error / error_scale > 1.0`` (error above the reference MAE).

    ``update`` returns the decisions as ``(kind, detector, statistic, threshold, details)``
    tuples, kind being ``"concept_drift"`` or ``"performance"``. Every baseline the card gives
    is checked once the window is full: ``accuracy`` and ``f1`` for classification (degraded
    when the rolling value is below ``baseline - tolerance``) and ``mae`` and ``rmse`` for
    regression (degraded when above ``baseline * (1 + tolerance)``). Each metric has its own
    episode: one ``("performance", name, value, limit, {"metric": name, "baseline": base})``
    event when it goes beyond the tolerance, re-armed once it recovers to within half the
    tolerance. Events of one update come in the order accuracy, f1 / mae, rmse.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    class_labels
        Class labels for classification.
    window
        Rolling window of labelled records.
    card_metrics
        The card's training metrics (``accuracy``/``f1`` or ``mae``/``rmse``) as the baseline.
    tolerance
        Allowed degradation (absolute for accuracy/F1, relative for MAE/RMSE).
    detector
        Concept-drift detector on the error stream, one of :data:`CONCEPT_DETECTORS`;
        anything else raises ``ValueError``.
    error_scale
        Reference MAE for regression (errors are divided by it).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> perf = PerformanceTracker("classification", ["a", "b"], window=200,
    ...                           card_metrics={"accuracy": 0.9})
    >>> fired = []
    >>> for i in range(2000):
    ...     wrong = rng.random() < (0.1 if i < 1000 else 0.4)
    ...     for kind, *_ in perf.update("a", "b" if wrong else "a"):
    ...         fired.append((i, kind))
    >>> fired
    [(1026, 'performance'), (1055, 'concept_drift')]
    """

    def __init__(
        self,
        task: str,
        class_labels: Sequence[Any] | None = None,
        window: int = 500,
        card_metrics: dict[str, float] | None = None,
        tolerance: float = 0.05,
        detector: str = "adwin",
        error_scale: float = 1.0,
    ) -> None:
        self.task = task
        self.class_labels = list(class_labels or [])
        self.window = int(window)
        self.card_metrics = dict(card_metrics or {})
        self.tolerance = tolerance
        if detector not in CONCEPT_DETECTORS:
            raise ValueError(
                f"unknown concept detector {detector!r}; expected one of "
                + ", ".join(repr(d) for d in CONCEPT_DETECTORS)
            )
        self.detector = detector
        self.error_scale = error_scale if error_scale > 0 else 1.0
        self._reset()

    def _reset(self) -> None:
        self._items: deque[tuple[Any, Any, float]] = deque()
        self._sum_err = 0.0
        self._sum_sq = 0.0
        self._tp: dict[Any, int] = {}
        self._fp: dict[Any, int] = {}
        self._fn: dict[Any, int] = {}
        self._n = 0
        self._degraded: dict[str, bool] = {}
        self._det = self._make_detector()

    def _make_detector(self) -> StreamDetector:
        return detector_class("errors", self.detector).calibrate(None, Budget(None))

    def _count(self, pred: Any, label: Any, sign: int) -> None:
        if pred == label:
            self._tp[label] = self._tp.get(label, 0) + sign
        else:
            self._fp[pred] = self._fp.get(pred, 0) + sign
            self._fn[label] = self._fn.get(label, 0) + sign

    def metrics(self) -> dict[str, float | None]:
        """Rolling metrics over the window (``None`` before the first label)."""
        m = len(self._items)
        if self.task == "classification":
            if m == 0:
                return {"accuracy": None, "f1": None}
            f1s = []
            for c in set(self._tp) | set(self._fp) | set(self._fn):
                tp, fp, fn = self._tp.get(c, 0), self._fp.get(c, 0), self._fn.get(c, 0)
                if tp + fp + fn:
                    f1s.append(2 * tp / (2 * tp + fp + fn))
            acc = 1.0 - self._sum_err / m
            return {"accuracy": acc, "f1": sum(f1s) / len(f1s) if f1s else None}
        if m == 0:
            return {"mae": None, "rmse": None}
        return {"mae": self._sum_err / m, "rmse": math.sqrt(max(self._sum_sq, 0.0) / m)}

    def update(self, prediction: Any, label: Any) -> list[tuple[str, str, float, float, dict]]:
        """Add one labelled prediction; return the decisions it triggers."""
        out: list[tuple[str, str, float, float, dict]] = []
        if self.task == "classification":
            err = 0.0 if prediction == label else 1.0
            sq = err
            self._count(prediction, label, +1)
            det_x = err
        else:
            err = abs(float(prediction) - float(label))
            sq = err * err
            scaled = err / self.error_scale
            det_x = scaled if self.detector == "adwin" else float(scaled > 1.0)
        self._items.append((prediction, label, err))
        self._sum_err += err
        self._sum_sq += sq
        self._n += 1
        if len(self._items) > self.window:
            p, lab, e = self._items.popleft()
            self._sum_err -= e
            self._sum_sq -= e * e
            if self.task == "classification":
                self._count(p, lab, -1)
        if self._det.update_many([det_x]):
            out.append(("concept_drift", self.detector, float(det_x), float("nan"),
                        {"labels_seen": self._n}))
        out.extend(self._check_performance())
        return out

    def _check_performance(self) -> list[tuple[str, str, float, float, dict]]:
        if len(self._items) < self.window:
            return []
        m = self.metrics()
        classification = self.task == "classification"
        out: list[tuple[str, str, float, float, dict]] = []
        for name in _CLASSIFICATION_METRICS if classification else _REGRESSION_METRICS:
            base, live = self.card_metrics.get(name), m[name]
            if base is None or live is None:
                continue
            base = float(base)
            value = float(live)
            if classification:
                limit = base - self.tolerance
                bad, good = value < limit, value >= base - self.tolerance / 2
            else:
                limit = base * (1 + self.tolerance)
                bad, good = value > limit, value <= base * (1 + self.tolerance / 2)
            if bad and not self._degraded.get(name, False):
                self._degraded[name] = True
                out.append(("performance", name, value, limit, {"metric": name, "baseline": base}))
            elif good:
                self._degraded[name] = False
        return out

    @property
    def degraded(self) -> bool:
        """Whether any checked rolling metric is currently beyond the tolerance."""
        return any(self._degraded.values())

    @property
    def labels_seen(self) -> int:
        """Number of labelled records so far."""
        return self._n
