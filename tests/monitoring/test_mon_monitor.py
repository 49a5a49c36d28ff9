from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from monitoring import ModelMonitor, MonitorConfig, MonitorEvent
from monitoring.benchmark import _draw, records, synthetic_model

DRIFT = ("feature_drift", "prediction_drift", "multivariate_drift")


def _fresh(model5: tuple) -> ModelMonitor:
    return ModelMonitor.restore(model5[2])


def _live(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return _draw(n, 5, rng, True), rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])


def _drift_events(events: list[MonitorEvent]) -> list[tuple[str, str | None, str]]:
    return [(e.kind, e.feature, e.record_id) for e in events if e.kind in DRIFT]


def test_mean_shift_fires_at_known_record(model5: tuple) -> None:
    x, c = _live(1500, 11)
    x[1000:, 3] += 1.0
    ev = _drift_events(_fresh(model5).update_many(records(x, c)))
    assert ev[0] == ("feature_drift", "x3", "r1023")  # r1022 before the 0.03 sd tolerance
    assert all(int(r[1:]) >= 1000 for _, _, r in ev)


def test_variance_doubling_is_caught(model5: tuple) -> None:
    x, c = _live(1500, 12)
    x[1000:, 4] *= 2.0
    events = _fresh(model5).update_many(records(x, c))
    first = next(e for e in events if e.kind == "feature_drift")
    # r1049 before the spread-ratio tolerance of 1.05
    assert (first.feature, first.detector, first.record_id) == ("x4", "cusum_var_up", "r1052")
    assert first.statistic > first.threshold


def test_broken_correlation_fires_multivariate_only(model5: tuple) -> None:
    x, c = _live(2000, 13)
    x[1000:, 1] = np.random.default_rng(0).standard_normal(1000)
    mon = _fresh(model5)
    ev = _drift_events(mon.update_many(records(x, c)))
    assert ev == [("multivariate_drift", "__multivariate__", "r1040")]
    # the joint change persists: the score's window still differs, so the episode stays open
    assert mon.current_window_stats()["__multivariate__"]["ks_p"] < 0.01
    assert mon.drift["__multivariate__"].active


def test_multivariate_episode_resolves_when_the_correlation_returns(model5: tuple) -> None:
    x, c = _live(4000, 13)
    x[1000:1300, 1] = np.random.default_rng(0).standard_normal(300)
    events = _fresh(model5).update_many(records(x, c))
    mv = [(e.kind, e.record_id) for e in events if e.feature == "__multivariate__"]
    assert mv == [("multivariate_drift", "r1040"), ("drift_resolved", "r2999")]


def test_categorical_shift_fires(model5: tuple) -> None:
    x, c = _live(3000, 14)
    c[1000:] = np.random.default_rng(1).choice(["a", "b", "c"], size=2000, p=[0.3, 0.3, 0.4])
    ev = _drift_events(_fresh(model5).update_many(records(x, c)))
    assert ev[0] == ("feature_drift", "c", "r1178")  # r1167 before the 0.01 PSI tolerance


def test_stationary_stream_within_budget(model5: tuple) -> None:
    """200k stationary records at ERT 100k: expect about 2 alarms; 6 or more is p < 0.02."""
    mon = _fresh(model5)
    for start in range(0, 200_000, 20_000):
        x, c = _live(20_000, 100 + start)
        mon.update_many(records(x, c, start=start))
    alarms = sum(d.alarms for d in mon.drift.values())
    assert alarms <= 5


def test_restore_matches_uninterrupted(model5: tuple) -> None:
    x, c = _live(4000, 15)
    x[1500:, 2] += 0.7
    c[2500:] = "c"
    recs = records(x, c)
    a = _fresh(model5)
    b = _fresh(model5)
    ev_a, ev_b = [], []
    for i in range(0, 4000, 250):
        ev_a += a.update_many(recs[i : i + 250])
        if i == 2000:
            b = ModelMonitor.restore(b.snapshot())
        ev_b += b.update_many(recs[i : i + 250])
        for r in recs[i : i + 250 : 50]:
            ev_a += a.update_label(r[0], r[2], r[2] + 1.0, r[3])
            ev_b += b.update_label(r[0], r[2], r[2] + 1.0, r[3])
    assert [e.to_dict() for e in ev_a] == [e.to_dict() for e in ev_b]
    assert len(_drift_events(ev_a)) >= 2
    assert json.dumps(a.status().to_dict(), sort_keys=True) == json.dumps(
        b.status().to_dict(), sort_keys=True)


def test_one_by_one_matches_batches(model5: tuple) -> None:
    x, c = _live(1500, 16)
    x[700:, 0] -= 1.0
    recs = records(x, c)
    a = _fresh(model5).update_many(recs)
    mon = _fresh(model5)
    b = [e for r in recs for e in mon.update(*r)]
    assert [(e.kind, e.feature, e.record_id) for e in a] == [
        (e.kind, e.feature, e.record_id) for e in b]
    first = next(e for e in a if e.kind == "feature_drift")
    assert first.feature == "x0" and int(first.record_id[1:]) >= 700


def test_drift_resolves_with_hysteresis(model5: tuple) -> None:
    x, c = _live(6000, 17)
    x[1000:1600, 0] += 1.5
    events = _fresh(model5).update_many(records(x, c))
    x0 = [(e.kind, e.record_id) for e in events if e.feature == "x0"]
    assert x0[0][0] == "feature_drift"
    assert x0[-1] == ("drift_resolved", "r2999")
    assert [k for k, _ in x0].count("feature_drift") == 1


def test_data_quality_events(model5: tuple) -> None:
    mon = _fresh(model5)
    base = {"x0": 0.0, "x1": 0.0, "x2": 0.0, "x3": 0.0, "x4": 0.0, "c": "a"}
    cases = [({"x0": None}, "missing"), ({"x1": math.nan}, "nan"), ({"x2": math.inf}, "inf"),
             ({"x3": 99.0}, "out_of_range"), ({"c": "zzz"}, "unseen_category")]
    for i, (patch, issue) in enumerate(cases):
        feats = {**base, **patch}
        if patch.get("x0", 1) is None:
            del feats["x0"]
        ev = mon.update(f"q{i}", feats, 0.0, float(i))
        assert [(e.kind, e.feature, e.details["issue"]) for e in ev] == [
            ("data_quality", next(iter(patch)), issue)]
    q = mon.status().to_dict()["data_quality"]
    assert q["x0"]["missing"] == 1 and q["c"]["unseen_category"] == 1


def test_labels_only_change_no_drift_but_concept_drift(model5: tuple) -> None:
    """Labels never move drift decisions; a shifted target raises concept drift."""
    mon = _fresh(model5)
    x, c = _live(3000, 18)
    rng = np.random.default_rng(3)
    drift, label_events = [], []
    for i, r in enumerate(records(x, c)):
        drift += [e.to_dict() for e in mon.update(*r) if e.kind in DRIFT]
        label = r[2] + 0.1 * rng.standard_normal() + (0.5 if i >= 1500 else 0.0)
        label_events += [(e.kind, i) for e in mon.update_label(r[0], r[2], label, r[3])]
    assert drift == []
    concept = [i for k, i in label_events if k == "concept_drift"]
    perf = [i for k, i in label_events if k == "performance"]
    assert concept and 1500 <= concept[0] < 1600
    assert perf and perf[0] >= 1500
    assert all(k in ("concept_drift", "performance") for k, _ in label_events)
    st = mon.status().to_dict()
    assert st["labels_seen"] == 3000 and st["performance"]["mae"] > 0.4


def test_status_is_json_and_complete(model5: tuple) -> None:
    mon = _fresh(model5)
    x, c = _live(1000, 19)
    mon.update_many(records(x, c))
    st = json.loads(json.dumps(mon.status().to_dict()))
    f = st["features"]["x0"]
    assert {"kind", "method", "score", "threshold", "drift_active", "window"} <= set(f)
    assert set(f["window"]) == {"ks", "ks_p", "psi", "js", "wasserstein"}
    assert st["records_seen"] == 1000 and st["prediction"]["kind"] == "numeric"
    assert st["multivariate"]["method"] == "mahalanobis_cusum"
    assert st["features"]["c"]["window"]["chi2_p"] > 0.001


def test_classifier_prediction_drift_and_river_overrides() -> None:
    rng = np.random.default_rng(4)
    card, ref = synthetic_model(2, 1000, rng)
    card = {**card, "task": "classification", "class_labels": ["neg", "pos"],
            "metrics": {"accuracy": 0.9}}
    ref["__prediction__"] = np.where(ref["x0"] > 0, "pos", "neg")
    cfg = MonitorConfig(detector_overrides={"x0": "page_hinkley", "x1": "adwin"}, seed=2)
    mon = ModelMonitor(card, ref, cfg)
    x = _draw(2000, 2, rng, True)
    x[1000:, 0] += 1.0
    ev = []
    for i, row in enumerate(x.tolist()):
        ev += mon.update(f"r{i}", {"x0": row[0], "x1": row[1]}, "pos" if row[0] > 0 else "neg",
                         float(i))
    got = {(e.kind, e.feature, e.detector) for e in ev if e.kind in DRIFT}
    assert ("feature_drift", "x0", "page_hinkley") in got
    assert ("prediction_drift", "__prediction__", "gtest") in got
    assert min(int(e.record_id[1:]) for e in ev if e.kind in DRIFT) >= 1000
    assert mon.status().to_dict()["features"]["x1"]["method"] == "adwin"


def test_unknown_detector_rejected(model5: tuple) -> None:
    card, ref, _ = model5
    with pytest.raises(ValueError):
        ModelMonitor(card, ref, MonitorConfig(numeric_detector="magic"))


def _flag_card() -> tuple[dict, pd.DataFrame]:
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"x": rng.standard_normal(1000),
                        "flag": rng.random(1000) < 0.3,
                        "c": rng.choice(["a", "b"], 1000)})
    card = {"task": "regression", "class_labels": None, "metrics": {}, "features": [
        {"name": "x", "kind": "numeric", "min": -9, "max": 9},
        {"name": "flag", "kind": "boolean"},
        {"name": "c", "kind": "categorical", "categories": ["a", "b"], "nullable": True}]}
    return card, ref


def test_boolean_feature_quality_follows_the_gateway_rules() -> None:
    """Only JSON booleans are booleans (the gateway rejects the rest as ``wrong_type``); a
    string another producer logged counts as an unseen category, a null as missing."""
    card, ref = _flag_card()
    mon = ModelMonitor(card, ref, MonitorConfig(multivariate=False))
    events = [e for i, v in enumerate(["true", False, "1", True, None, "maybe"])
              for e in mon.update(f"r{i}", {"x": 0.0, "flag": v, "c": "a"}, 0.0, float(i))]
    assert [(e.record_id, e.details["issue"]) for e in events] == [
        ("r0", "unseen_category"), ("r2", "unseen_category"), ("r4", "missing"),
        ("r5", "unseen_category")]


@pytest.mark.parametrize("missing", [None, math.nan], ids=["none", "nan"])
def test_missing_categories_are_not_a_category(missing: float | None) -> None:
    """A nullable categorical's missing values (None or NaN) are skipped, not fed to the
    G-test as an unseen category; a non-nullable one counts them."""
    card, ref = _flag_card()
    mon = ModelMonitor(card, ref, MonitorConfig(multivariate=False))
    rng = np.random.default_rng(9)
    recs = [(f"r{i}", {"x": float(rng.standard_normal()), "flag": bool(rng.random() < 0.3),
                       "c": missing if i % 3 == 0 else str(rng.choice(["a", "b"]))}, 0.0, float(i))
            for i in range(3000)]
    assert _drift_events(mon.update_many(recs)) == []
    assert mon.status().to_dict()["data_quality"]["c"]["nan"] == 0
    strict = {**card, "features": [*card["features"][:2],
                                   {**card["features"][2], "nullable": False}]}
    mon = ModelMonitor(strict, ref, MonitorConfig(multivariate=False))
    mon.update_many(recs[:30])
    counts = mon.status().to_dict()["data_quality"]["c"]
    assert counts["missing" if missing is None else "nan"] == 10
    assert counts["unseen_category"] == 0


@pytest.mark.parametrize("detector", ["page_hinkley", "adwin"])
def test_river_detectors_fire_on_a_shift_and_hold_the_budget(detector: str) -> None:
    rng = np.random.default_rng(4)
    card, ref = synthetic_model(2, 2000, rng)
    config = MonitorConfig(numeric_detector=detector, multivariate=False, seed=2)
    mon = ModelMonitor(card, ref, config)
    x = _draw(2000, 2, np.random.default_rng(5), True)
    x[1000:, 0] += 1.0
    ev = [(e.feature, e.detector, int(e.record_id[1:]))
          for e in mon.update_many(records(x)) if e.kind in DRIFT]
    assert ev and ev[0][:2] == ("x0", detector) and 1000 <= ev[0][2] < 1100, ev
    mon = ModelMonitor(card, ref, config)
    x = _draw(30_000, 2, np.random.default_rng(6), True)
    alarms = [e for e in mon.update_many(records(x)) if e.kind in DRIFT]
    assert len(alarms) <= 2  # budget: 0.3 expected in 30,000 records


def test_kswin_compares_with_the_reference_and_catches_a_1sd_shift() -> None:
    rng = np.random.default_rng(4)
    card, ref = synthetic_model(2, 2000, rng)
    config = MonitorConfig(numeric_detector="kswin", multivariate=False, seed=2)

    def first_alarms(x: np.ndarray) -> list[tuple[str | None, int]]:
        mon = ModelMonitor(card, ref, config)
        return [(e.feature, int(e.record_id[1:])) for e in mon.update_many(records(x))
                if e.kind == "feature_drift"]

    x = _draw(1400, 2, np.random.default_rng(5), True)
    early = x.copy()
    early[:, 0] += 1.0  # drifted from the start: the window is pre-filled from the reference
    assert first_alarms(early)[0] == ("x0", 149)
    x[1000:, 0] += 1.0
    assert first_alarms(x) == [("x0", 1097)]


def test_restore_matches_uninterrupted_with_river_detectors() -> None:
    rng = np.random.default_rng(4)
    card, ref = synthetic_model(3, 2000, rng)
    config = MonitorConfig(detector_overrides={"x0": "page_hinkley", "x1": "adwin",
                                               "x2": "kswin"}, seed=3)
    x = _draw(2400, 3, np.random.default_rng(7), True)
    x[1200:, :] += 1.0
    recs = records(x)
    a, b = ModelMonitor(card, ref, config), ModelMonitor(card, ref, config)
    ev_a = a.update_many(recs)
    ev_b = b.update_many(recs[:1100])
    ev_b += ModelMonitor.restore(b.snapshot()).update_many(recs[1100:])
    got = [(e.kind, e.feature, e.detector, e.record_id) for e in ev_a]
    assert got == [(e.kind, e.feature, e.detector, e.record_id) for e in ev_b]
    assert {"page_hinkley", "adwin", "kswin"} <= {d for _, _, d, _ in got}
