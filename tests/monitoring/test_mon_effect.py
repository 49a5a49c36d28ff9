"""Drift events say what moved and by how much, with an interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.monitor import ModelMonitor


def _monitor(rng: np.random.Generator) -> ModelMonitor:
    card = {"task": "regression", "class_labels": None, "metrics": {},
            "features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"},
                         {"name": "c", "kind": "categorical", "categories": ["x", "y", "z"]}]}
    ref = pd.DataFrame({"a": rng.standard_normal(2000) * 3 + 10,
                        "b": rng.standard_normal(2000),
                        "c": rng.choice(["x", "y", "z"], 2000, p=[0.6, 0.3, 0.1])})
    ref["__prediction__"] = ref["a"] + ref["b"]
    return ModelMonitor(card, ref)


def _records(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[tuple]:
    return [(f"r{i}", {"a": x, "b": y, "c": k}, x + y, float(i))
            for i, (x, y, k) in enumerate(zip(a.tolist(), b.tolist(), c.tolist(), strict=True))]


def test_events_carry_the_effect_with_an_interval() -> None:
    rng = np.random.default_rng(3)
    mon = _monitor(rng)
    n = 1500
    a = rng.standard_normal(n) * 3 + 10
    a[700:] += 4.5  # +1.5 reference sd
    b = rng.standard_normal(n)
    b[700:] *= 2.5  # spread x2.5
    c = rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1])
    c[700:] = rng.choice(["x", "y", "z"], n - 700, p=[0.2, 0.3, 0.5])
    events = mon.update_many(_records(a, b, c))  # one batch: the effect reaches into it
    first = {e.feature: e for e in events if e.kind == "feature_drift"}
    assert set(first) == {"a", "b", "c"}
    ea = first["a"].details["effect"]
    lo, hi = ea["mean_shift_ci"]
    assert lo < 1.5 < hi and hi - lo < 1.5  # the true shift, within a useful interval
    assert 10 <= ea["n"] < 100  # the values since the change, not the whole recent window
    eb = first["b"].details["effect"]
    assert 1.0 < eb["spread_ratio_ci"][0] < 2.5 < eb["spread_ratio_ci"][1] + 0.5
    assert abs(eb["mean_shift"]) < 1.0
    ec = first["c"].details["effect"]
    assert ec["psi"] > 0.05 and ec["psi_ci"][0] < ec["psi"] < ec["psi_ci"][1]


def test_effect_reads_earlier_batches_too() -> None:
    rng = np.random.default_rng(4)
    mon = _monitor(rng)
    n = 1200
    a = rng.standard_normal(n) * 3 + 10
    a[600:] += 6.0  # +2 sd
    recs = _records(a, rng.standard_normal(n), rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]))
    events = [e for i in range(n) for e in mon.update(*recs[i]) if e.kind == "feature_drift"]
    e = next(e for e in events if e.feature == "a")
    effect = e.details["effect"]  # one record per batch: all but one from the ring
    assert effect["n"] >= 10 and effect["mean_shift_ci"][0] < 2.0 < effect["mean_shift_ci"][1]
