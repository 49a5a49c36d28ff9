"""Attribution drift: nDCG, calibrated thresholds, firing indices, hysteresis, snapshots."""

from __future__ import annotations

import pickle

import numpy as np

from monitoring.attribution import ATTRIBUTION, AttributionMonitor, ndcg

WEIGHTS = np.array([3.0, 2.0, 1.2, 0.8, 0.5, 0.3])
NAMES = [f"f{i}" for i in range(WEIGHTS.size)]


def _rows(rng: np.random.Generator, n: int, weights: np.ndarray = WEIGHTS) -> np.ndarray:
    return rng.standard_normal((n, weights.size)) * weights


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"r{i}" for i in range(start, start + n)]


def test_ndcg_falls_most_when_the_top_feature_drops() -> None:
    base = WEIGHTS
    last_swapped = base.copy()
    last_swapped[[-1, -2]] = last_swapped[[-2, -1]]
    top_dropped = base.copy()
    top_dropped[0] = 0.0
    assert ndcg(base, base) == 1.0
    assert 1.0 > ndcg(last_swapped, base) > ndcg(top_dropped, base)


def test_stationary_stream_raises_nothing() -> None:
    rng = np.random.default_rng(11)
    mon = AttributionMonitor(NAMES, {"baseline": _rows(rng, 2000)})
    live = _rows(rng, 50_000)
    assert mon.update_many(_ids(50_000), live, np.arange(50_000.0)) == []
    assert mon.scores["baseline"] > mon.thresholds["baseline"]


def test_collapse_fires_at_a_seeded_index_then_resolves() -> None:
    rng = np.random.default_rng(12)
    mon = AttributionMonitor(NAMES, {"baseline": _rows(rng, 2000)}, resolve_after=500)
    before = _rows(rng, 1000)
    assert mon.update_many(_ids(1000), before, np.arange(1000.0)) == []
    collapsed = WEIGHTS.copy()
    collapsed[0] = 0.05  # f0 loses its signal
    events = mon.update_many(_ids(600, 1000), _rows(rng, 600, collapsed), np.arange(600.0))
    assert [(e.kind, e.detector, e.record_id) for e in events] == [
        ("attribution_drift", "ndcg", "r1099")]
    moved = events[0].details["moved"][0]
    assert moved["feature"] == "f0" and moved["baseline_rank"] == 1 and moved["live_rank"] > 1
    assert events[0].statistic < events[0].threshold
    back = mon.update_many(_ids(1500, 1600), _rows(rng, 1500), np.arange(1500.0))
    assert [(e.kind, e.feature) for e in back] == [("drift_resolved", ATTRIBUTION)]
    assert not mon.drift["baseline"].active


def test_previous_version_baseline_is_compared_too() -> None:
    rng = np.random.default_rng(13)
    own = WEIGHTS.copy()
    own[0] = 0.05  # this version never learned f0
    mon = AttributionMonitor(NAMES, {"baseline": _rows(rng, 2000, own),
                                     "previous": _rows(rng, 2000)},
                             details={"previous": {"version": "v1"}})
    events = mon.update_many(_ids(400), _rows(rng, 400, own), np.arange(400.0))
    assert [(e.detector, e.details["version"]) for e in events] == [("ndcg_vs_previous", "v1")]
    assert events[0].details["moved"][0]["feature"] == "f0"
    assert not mon.drift["baseline"].active


def test_snapshot_makes_the_same_decisions() -> None:
    rng = np.random.default_rng(14)
    mon = AttributionMonitor(NAMES, {"baseline": _rows(rng, 1000)})
    mon.update_many(_ids(300), _rows(rng, 300), np.arange(300.0))
    copy = pickle.loads(pickle.dumps(mon))
    collapsed = WEIGHTS.copy()
    collapsed[0] = 0.0
    tail = _rows(rng, 400, collapsed)
    first = mon.update_many(_ids(400, 300), tail, np.arange(400.0))
    second = copy.update_many(_ids(400, 300), tail, np.arange(400.0))
    assert first and first == second
