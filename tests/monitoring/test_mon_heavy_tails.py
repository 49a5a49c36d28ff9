"""Heavy-tailed integer features (sensor readings: mostly small integers, now and then
thousands, as river's Shuttle): the stream gets a robust (winsorized) scale, its charts
thresholds a single wild reading cannot cross, no false alarms on stationary traffic, and a
Gaussian feature beside it keeps its plain mean and standard deviation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitoring.detectors.cusum import Cusum
from monitoring.monitor import ModelMonitor
from monitoring.reference import numeric_scale

DRIFT = ("feature_drift", "prediction_drift", "multivariate_drift")


def _sensor(rng: np.random.Generator, n: int, wild: float = 1e-3) -> np.ndarray:
    """0 in two thirds of the rows, small integers otherwise, a reading of hundreds to
    thousands (either sign) in ``wild`` of them (kurtosis in the hundreds to thousands)."""
    x = np.where(rng.random(n) < 2 / 3, 0, rng.integers(-8, 9, n)).astype(float)
    spikes = rng.random(n) < wild
    x[spikes] = rng.choice([-1.0, 1.0], spikes.sum()) * rng.integers(500, 4000, spikes.sum())
    return x


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"sensor": _sensor(rng, n), "g": rng.standard_normal(n)})


def _card() -> dict:
    return {"task": "regression", "class_labels": None, "metrics": {},
            "features": [{"name": c, "kind": "numeric"} for c in ("sensor", "g")]}


def _records(frame: pd.DataFrame, start: int = 0) -> list[tuple]:
    return [(f"r{start + i}", row, None, float(start + i))
            for i, row in enumerate(frame.to_dict(orient="records"))]


def test_heavy_tailed_feature_gets_a_robust_scale_and_gaussian_keeps_its_own() -> None:
    rng = np.random.default_rng(5)
    x = _sensor(rng, 2000)
    scale = numeric_scale(x)
    assert scale.method == "winsorized" and scale.sd_ratio > 5 and scale.kurtosis > 100
    assert 2.0 < scale.spread < 5.0 < x.std(ddof=1)  # the body's scale, not the wild readings'
    g = rng.standard_normal(2000)
    plain = numeric_scale(g)
    assert plain.method == "mean_sd"
    assert (plain.center, plain.spread) == (float(g.mean()), float(g.std(ddof=1)))


def test_heavy_tailed_feature_has_sane_thresholds_and_no_false_alarms() -> None:
    rng = np.random.default_rng(11)
    ref = _frame(rng, 2000)
    mon = ModelMonitor(_card(), ref)
    det = mon.numeric[0].detector
    assert isinstance(det, Cusum)
    clip = mon.config.clip_z
    # a single wild reading (clipped at clip_z) cannot cross a mean chart's threshold
    assert all(clip - k < h < 100 for h, k in zip(det.thresholds[:2], det.k[:2], strict=True))
    status = mon.status().to_dict()["features"]
    assert status["sensor"]["scale"]["method"] == "winsorized"
    assert status["sensor"]["diagnostics"][0].startswith("heavy-tailed")
    assert status["g"]["scale"]["method"] == "mean_sd" and "diagnostics" not in status["g"]
    live = _frame(rng, 100_000)  # about 100 wild readings
    events = []
    for s in range(0, len(live), 10_000):
        events += mon.update_many(_records(live.iloc[s : s + 10_000], s))
    assert [e for e in events if e.kind in DRIFT] == []
    # the body of the readings moving up by one (robust) sd is caught within a few records
    moved = _frame(rng, 1000)
    moved["sensor"] += mon.sd[0]
    first = next(e for e in mon.update_many(_records(moved, 100_000)) if e.kind in DRIFT)
    assert first.feature == "sensor" and int(first.record_id[1:]) - 100_000 < 60


def test_plain_scale_on_heavy_tails_is_diagnosed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the robust scale (as before it), one wild reading of the reference crosses the
    mean charts' thresholds, and the stream's diagnostics say so."""
    import monitoring.monitor as monitor_module

    monkeypatch.setattr(monitor_module, "numeric_scale",
                        lambda x: numeric_scale(x, ratio=math.inf))
    mon = ModelMonitor(_card(), _frame(np.random.default_rng(11), 2000))
    notes = mon.status().to_dict()["features"]["sensor"]["diagnostics"]
    assert any("one record of the reference crosses threshold" in n for n in notes)
    assert mon.scales[0].method == "mean_sd"
