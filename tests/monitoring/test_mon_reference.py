"""Reference honesty and charts that cannot work: copies are not draws, spiky integer and
constant features get no chart that cannot fire or cannot stay quiet, and say so."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.monitor import ModelMonitor
from monitoring.reference import reference_margin, reference_size

DRIFT = ("feature_drift", "prediction_drift", "multivariate_drift")


def _population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "g": rng.standard_normal(n),
        "h": rng.standard_normal(n) + 0.5 * rng.standard_normal(n),
        "spike": (rng.random(n) < 0.01) * rng.integers(1, 16, n),  # 0 in 99% of rows
        "flat": np.zeros(n),
    })


def _card() -> dict:
    return {"task": "regression", "class_labels": None, "metrics": {},
            "features": [{"name": c, "kind": "numeric"} for c in ("g", "h", "spike", "flat")]}


def _records(frame: pd.DataFrame) -> list[tuple]:
    return [(f"r{i}", row, row["g"] + row["h"], float(i))
            for i, row in enumerate(frame.to_dict(orient="records"))]


def test_resampled_reference_counts_its_distinct_rows() -> None:
    rng = np.random.default_rng(0)
    few = _population(rng, 150)
    resampled = few.sample(n=2000, replace=True, random_state=1)
    size = reference_size(resampled, list(few.columns))
    assert size.rows == 2000 and size.effective_size == size.distinct_rows
    assert size.distinct_rows == len(resampled.drop_duplicates()) <= 150
    # rows of two 3-valued features repeat naturally: every row counts
    discrete = pd.DataFrame({"a": rng.integers(0, 3, 500), "b": rng.integers(0, 3, 500)})
    assert reference_size(discrete, ["a", "b"]).effective_size == 500


def test_spiky_and_constant_features_are_diagnosed_and_stay_quiet() -> None:
    rng = np.random.default_rng(1)
    ref = _population(rng, 2000)
    ref["__prediction__"] = ref["g"] + ref["h"]
    mon = ModelMonitor(_card(), ref)
    status = mon.status().to_dict()["features"]
    assert "constant in the reference" in status["flat"]["diagnostics"][0]
    assert all(c["threshold"] is None for c in status["flat"]["charts"].values())
    assert status["spike"]["charts"]["cusum_var_down"]["threshold"] is None
    assert any(d.startswith("cusum_var_down: off") for d in status["spike"]["diagnostics"])
    assert "diagnostics" not in status["g"]  # a Gaussian feature has nothing to report
    live = _population(rng, 20_000)
    events = []
    for s in range(0, len(live), 5000):
        events += mon.update_many(_records(live.iloc[s : s + 5000]))
    assert [e for e in events if e.kind in DRIFT] == []
    # the spiky feature's mean chart still catches its spikes becoming common
    more = _population(rng, 2000)
    more["spike"] = (rng.random(2000) < 0.2) * rng.integers(1, 16, 2000)
    caught = [e for e in mon.update_many(_records(more)) if e.feature == "spike"]
    assert caught and caught[0].detector == "cusum_mean_up"


def _gaussian_card(p: int) -> dict:
    return {"task": "regression", "class_labels": None, "metrics": {},
            "features": [{"name": f"x{j}", "kind": "numeric"} for j in range(p)]}


def _gaussian_records(x: np.ndarray) -> list[tuple]:
    names = [f"x{j}" for j in range(x.shape[1])]
    return [(f"r{i}", dict(zip(names, row, strict=True)), None, float(i))
            for i, row in enumerate(x.tolist())]


def test_small_reference_gets_a_margin_and_thresholds_that_can_fire() -> None:
    rate = 1e-7
    assert reference_margin(2000, rate) == 0.0  # a large reference: the threshold copes
    margins = [reference_margin(n, rate) for n in (1000, 500, 299, 178, 65)]
    assert margins == sorted(margins) and margins[0] < 0.05 and margins[-2] > 0.25
    # 178 distinct rows, live traffic from another sample of 178 rows of the population:
    # about two such samples differ by 0.1 sd per feature, up to 0.3 sd in one of ten
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(rng.standard_normal((178, 10)), columns=[f"x{j}" for j in range(10)])
    pool = rng.standard_normal((178, 10))
    mon = ModelMonitor(_gaussian_card(10), ref.sample(2000, replace=True, random_state=0))
    assert mon.reference_size.effective_size == 178
    tol = mon.tolerances["x0"]
    assert tol.reference_margin > 0.25 and tol.mean_shift == round(0.03 + tol.reference_margin, 4)
    det = mon.numeric[0].detector
    assert max(det.thresholds[:2]) < 40  # calibrated at k + margin: not hundreds
    live = pool[rng.integers(0, 178, 30_000)]
    events = []
    for s in range(0, len(live), 5000):
        events += mon.update_many(_gaussian_records(live[s : s + 5000]))
    assert [e for e in events if e.kind in DRIFT] == []
    moved = pool[rng.integers(0, 178, 300)] + np.eye(10)[4]  # x4 moves by 1 sd
    first = next(e for e in mon.update_many(_gaussian_records(moved)) if e.kind in DRIFT)
    assert first.feature == "x4" and int(first.record_id[1:]) < 100
