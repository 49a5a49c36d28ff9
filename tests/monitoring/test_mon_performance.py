from __future__ import annotations

import math

import numpy as np
import pytest
from river import drift

from monitoring.performance import CONCEPT_DETECTORS, PerformanceTracker


def _wrong_flags(seed: int, n0: int, n1: int, p0: float = 0.1, p1: float = 0.4) -> list[bool]:
    """Seeded misclassification flags: error rate ``p0`` for ``n0`` records, then ``p1``."""
    rng = np.random.default_rng(seed)
    return [bool(rng.random() < (p0 if i < n0 else p1)) for i in range(n0 + n1)]


def _classification_events(detector: str, wrong: list[bool], **kw) -> list[tuple[int, tuple]]:
    perf = PerformanceTracker("classification", ["a", "b"], window=200, detector=detector, **kw)
    return [(i, e) for i, w in enumerate(wrong) for e in perf.update("b" if w else "a", "a")]


def _concept(events: list[tuple[int, tuple]]) -> list[int]:
    return [i for i, e in events if e[0] == "concept_drift"]


def _regression_pairs(seed: int, scales: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """Seeded ``(prediction, label)`` pairs; noise std per phase ``(length, std)``."""
    rng = np.random.default_rng(seed)
    pairs = []
    for n, s in scales:
        for _ in range(n):
            y = float(rng.standard_normal())
            pairs.append((y + s * float(rng.standard_normal()), y))
    return pairs


def test_concept_detectors_constant() -> None:
    assert CONCEPT_DETECTORS == ("adwin", "ddm", "hddm_a")


@pytest.mark.parametrize("detector", ["nope", "ADWIN", "kswin", ""])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_unknown_detector_raises(task: str, detector: str) -> None:
    with pytest.raises(ValueError, match="'adwin', 'ddm', 'hddm_a'"):
        PerformanceTracker(task, ["a", "b"], detector=detector)


def test_positional_signature_as_monitor_uses_it() -> None:
    perf = PerformanceTracker("regression", None, 100, {"mae": 0.1}, 0.05, "ddm", 0.5)
    assert (perf.window, perf.tolerance, perf.detector, perf.error_scale) == (100, 0.05, "ddm", 0.5)
    assert perf.card_metrics == {"mae": 0.1}


@pytest.mark.parametrize(
    ("detector", "expected", "stat"),
    [("adwin", [2047], 0.0), ("ddm", [2008], 1.0), ("hddm_a", [2048], 1.0)],
)
def test_classification_detectors_fire_after_error_increase(
    detector: str, expected: list, stat: float
) -> None:
    events = _classification_events(detector, _wrong_flags(0, 2000, 1000))
    assert _concept(events) == expected
    first = next(e for _, e in events if e[0] == "concept_drift")
    assert first[1] == detector and first[2] == stat and math.isnan(first[3])
    assert first[4] == {"labels_seen": expected[0] + 1}


@pytest.mark.parametrize(
    ("detector", "expected"),
    [("adwin", []), ("ddm", [2056]), ("hddm_a", [])],
)
def test_classification_stationary_false_alarms(detector: str, expected: list) -> None:
    """On a stationary 10% error stream only river's own default false alarms occur."""
    wrong = _wrong_flags(0, 5000, 0)
    assert _concept(_classification_events(detector, wrong)) == expected
    raw = {"adwin": drift.ADWIN, "ddm": drift.binary.DDM, "hddm_a": drift.binary.HDDMA}[detector]()
    river_alarms = []
    for i, w in enumerate(wrong):
        raw.update(float(w))
        if raw.drift_detected:
            river_alarms.append(i)
    assert river_alarms == expected


@pytest.mark.parametrize(
    ("detector", "expected"),
    [("adwin", [2047]), ("ddm", [2145]), ("hddm_a", [2076])],
)
def test_regression_detectors_fire_after_error_increase(detector: str, expected: list) -> None:
    pairs = _regression_pairs(0, [(2000, 1.0), (1000, 2.0)])
    perf = PerformanceTracker("regression", window=200, detector=detector, error_scale=0.8)
    fired = [(i, e) for i, (p, y) in enumerate(pairs) for e in perf.update(p, y)]
    assert _concept(fired) == expected
    assert {e[1] for _, e in fired} == {detector}


@pytest.mark.parametrize("detector", ["ddm", "hddm_a"])
def test_regression_binary_detectors_get_indicator(detector: str) -> None:
    """DDM / HDDM_A see ``abs_error / error_scale > 1``; the reported statistic is that 0/1."""
    pairs = _regression_pairs(0, [(2000, 1.0), (1000, 2.0)])
    perf = PerformanceTracker("regression", window=200, detector=detector, error_scale=0.8)
    raw = drift.binary.DDM() if detector == "ddm" else drift.binary.HDDMA()
    for p, y in pairs:
        x = float(abs(p - y) / 0.8 > 1.0)
        raw.update(x)
        ev = [e for e in perf.update(p, y) if e[0] == "concept_drift"]
        assert bool(ev) == raw.drift_detected
        if ev:
            assert ev[0][2] == x


def test_f1_only_baseline_fires_when_minority_missed() -> None:
    rng = np.random.default_rng(5)
    perf = PerformanceTracker("classification", ["a", "b"], window=300,
                              card_metrics={"f1": 0.9}, tolerance=0.1)
    events = []
    for i in range(3000):
        label = "b" if rng.random() < 0.2 else "a"
        flipped = "a" if label == "b" else "b"
        pred = "a"  # from 1500 on the minority class is always missed
        if i < 1500 and rng.random() >= 0.97:
            pred = flipped
        elif i < 1500:
            pred = label
        events += [(i, e) for e in perf.update(pred, label)]
        if i == 1499:
            assert not perf.degraded
            assert perf.metrics()["f1"] == pytest.approx(0.9259368982372982)
    perf_events = [(i, e) for i, e in events if e[0] == "performance"]
    assert len(perf_events) == 1
    i, (kind, name, value, limit, details) = perf_events[0]
    assert (i, kind, name) == (1607, "performance", "f1")
    assert value == pytest.approx(0.7992184632656145) and limit == pytest.approx(0.8)
    assert details == {"metric": "f1", "baseline": 0.9}
    assert perf.degraded


def test_mae_and_rmse_baselines_both_fire_and_rearm() -> None:
    pairs = _regression_pairs(7, [(1000, 1.0), (1000, 2.0), (1000, 1.0), (1000, 2.0)])
    perf = PerformanceTracker("regression", window=200, card_metrics={"mae": 0.8, "rmse": 1.0},
                              tolerance=0.2, error_scale=0.8)
    events, degraded = [], {}
    for i, (p, y) in enumerate(pairs):
        events += [(i, e) for e in perf.update(p, y) if e[0] == "performance"]
        if i in (999, 1999, 2999, 3999):
            degraded[i] = perf.degraded
    assert [(i, e[1]) for i, e in events] == [
        (1037, "rmse"), (1042, "mae"), (3035, "rmse"), (3039, "mae")]
    assert degraded == {999: False, 1999: True, 2999: False, 3999: True}
    for _, (_, name, value, limit, details) in events:
        base = {"mae": 0.8, "rmse": 1.0}[name]
        assert limit == pytest.approx(base * 1.2) and value > limit
        assert details == {"metric": name, "baseline": base}


def test_classification_events_in_fixed_order_same_update() -> None:
    perf = PerformanceTracker("classification", ["a", "b"], window=10,
                              card_metrics={"f1": 1.0, "accuracy": 1.0})
    out = [perf.update("a", "a") for _ in range(10)]
    assert all(o == [] for o in out)
    ev = perf.update("b", "a")
    assert [(e[0], e[1]) for e in ev] == [("performance", "accuracy"), ("performance", "f1")]
    assert ev[0][2] == pytest.approx(0.9) and ev[0][3] == pytest.approx(0.95)
    assert perf.update("b", "a") == []  # one event per episode
    for _ in range(10):  # recovers: accuracy 1.0 >= 0.975
        perf.update("a", "a")
    assert not perf.degraded
    assert [e[1] for e in perf.update("b", "a")] == ["accuracy", "f1"]


def test_regression_per_metric_episodes_and_degraded_any() -> None:
    perf = PerformanceTracker("regression", window=4, card_metrics={"rmse": 1.0, "mae": 1.0},
                              tolerance=0.1)
    for _ in range(4):
        assert perf.update(1.0, 0.0) == []
    # mae 0.875 (fine), rmse sqrt(4.75 / 4) = 1.09 (fine), then rmse over the limit
    for e in (0.5, 0.5, 0.5):
        assert perf.update(e, 0.0) == []
    ev = perf.update(3.0, 0.0)  # mae 1.125 > 1.1 and rmse sqrt(9.75 / 4) > 1.1
    assert [e[1] for e in ev] == ["mae", "rmse"]
    assert perf.degraded
    for _ in range(3):
        perf.update(0.2, 0.0)  # window 3.0, 0.2, 0.2, 0.2: mae 0.9, rmse 1.51
    assert perf.metrics()["mae"] == pytest.approx(0.9)
    assert perf.degraded  # rmse still degraded, mae recovered
    ev = perf.update(1.4, 0.0)  # window 0.2, 0.2, 0.2, 1.4: mae 0.5, rmse 0.72 -> all fine
    assert ev == [] and not perf.degraded
    for _ in range(3):
        perf.update(0.2, 0.0)
    ev = perf.update(3.0, 0.0)  # rmse only: mae 0.9, rmse sqrt(9.12 / 4) = 1.51
    assert [(e[1], round(e[2], 4), round(e[3], 4)) for e in ev] == [("rmse", 1.51, 1.1)]


def test_no_card_baseline_no_performance_events() -> None:
    wrong = _wrong_flags(1, 500, 500, p0=0.0, p1=1.0)
    events = _classification_events("adwin", wrong)
    assert all(e[0] == "concept_drift" for _, e in events)
