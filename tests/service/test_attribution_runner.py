"""Attribution across versions and in the monitor, on real registered forests and a real
SQLite log: a version trained without a feature's signal shows that feature's importance
collapse side by side and raises an attribution-drift event when it serves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sklearn.ensemble import RandomForestRegressor

from models.registry import RegisteredModel, register_model
from monitoring import MonitorConfig
from service.attribution_stream import KV_ATTRIBUTION, AttributionStream
from service.explain_api import attribution_view
from service.metrics import monitor_metrics
from service.monitor_runner import MonitorRunner
from service.store.factory import open_store
from service.store.records import PredictionRecord
from service.webhooks.payload import drift_evidence

NAMES = [f"f{i}" for i in range(6)]
NAME = "attr-forest"


def _data(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.Series]:
    X = pd.DataFrame(rng.standard_normal((n, 6)), columns=NAMES)
    y = 4 * X["f0"] + 2 * X["f1"] + X["f2"] + 0.5 * X["f3"] + 0.1 * rng.standard_normal(n)
    return X, y.rename("y")


@pytest.fixture(scope="module")
def versions() -> tuple[RegisteredModel, RegisteredModel, pd.DataFrame]:
    rng = np.random.default_rng(21)
    X, y = _data(rng, 1500)
    held, held_y = _data(rng, 600)
    forest = dict(n_estimators=30, max_depth=7, random_state=0)
    v1 = register_model(NAME, RandomForestRegressor(**forest).fit(X.to_numpy(), y), X, y,
                        reference=held, reference_target=held_y)
    blind = X.assign(f0=rng.permutation(X["f0"].to_numpy()))  # f0's signal removed
    v2 = register_model(NAME, RandomForestRegressor(**forest).fit(blind.to_numpy(), y), blind,
                        y, reference=held, reference_target=held_y)
    live, _ = _data(rng, 800)
    return v1, v2, live


def _records(entry: RegisteredModel, live: pd.DataFrame, start: float) -> list[PredictionRecord]:
    model = entry.load_estimator()
    predictions = model.predict(live.to_numpy())
    return [PredictionRecord(model=NAME, version=entry.version, features=row,
                             prediction=float(p), ts=start + i)
            for i, (row, p) in enumerate(zip(live.to_dict("records"), predictions,
                                             strict=True))]


def _runner(store, registry=None) -> MonitorRunner:
    metrics = monitor_metrics(registry) if registry is not None else None
    return MonitorRunner(store, MonitorConfig(quality_events=False), metrics, batch=200,
                         attribution=AttributionStream(sample_rate=1.0))


def _drain(runner: MonitorRunner) -> list:
    events = []
    while (result := runner.step()).records:
        events.extend(result.events)
    return events


def test_side_by_side_shows_the_collapse(versions) -> None:
    v1, v2, _ = versions
    view = attribution_view(NAME, [v1, v2], {})
    first, second = (v["baseline"] for v in view["versions"])
    assert first["f0"]["rank"] == 1 and first["f0"]["share"] > 0.4
    assert second["f0"]["share"] < 0.1 and second["f0"]["rank"] >= 4
    f0 = next(row for row in view["features"] if row["feature"] == "f0")["versions"]
    assert f0[v2.version]["rank_change_vs_previous"] <= -3
    assert view["versions"][1]["explainer"]["method"] == "tree"


def test_serving_the_blind_version_raises_attribution_drift(tmp_path, versions) -> None:
    v1, v2, live = versions
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(_records(v1, live.iloc[:400], 1000.0) + _records(v2, live.iloc[400:], 2000.0))
    registry = CollectorRegistry()
    runner = _runner(store, registry)
    events = [e for e in _drain(runner) if e.kind == "attribution_drift"]
    assert [(e.version, e.event.detector) for e in events] == [(v2.version, "ndcg_vs_previous")]
    details = events[0].event.details
    assert details["version"] == v1.version and details["moved"][0]["feature"] == "f0"
    assert events[0].event.statistic < events[0].event.threshold
    # stored with the records and exported; gauges per version
    frame = store.export(NAME)
    assert frame["attributions"].notna().all()
    doc = frame["attributions"].iloc[0]
    assert abs(doc["base_value"] + sum(doc["contributions"].values()) - doc["output"]) < 1e-6
    gauge = "driftgate_feature_attribution"
    blind_f0 = registry.get_sample_value(gauge, {"model": NAME, "version": v2.version,
                                                 "feature": "f0"})
    seeing_f0 = registry.get_sample_value(gauge, {"model": NAME, "version": v1.version,
                                                  "feature": "f0"})
    assert blind_f0 is not None and seeing_f0 is not None and blind_f0 < 0.1 * seeing_f0
    assert registry.get_sample_value("driftgate_attribution_ndcg",
                                     {"model": NAME, "version": v2.version}) > 0.9
    # the live view, published at the checkpoint, and a restart that resumes it
    runner.checkpoint()
    live_view = store.kv_get(KV_ATTRIBUTION.format(model=NAME))["versions"]
    assert live_view[v2.version]["explained"] == 400
    assert live_view[v2.version]["baselines"]["previous"]["drift_active"] is True
    restarted = _runner(store)
    state = restarted.attribution.versions[(NAME, v2.version)]  # type: ignore[union-attr]
    assert state.monitor is not None and state.monitor.seen == 400


def test_drift_events_carry_the_attribution_weight(tmp_path, versions) -> None:
    v1, _, live = versions
    shifted = live.assign(f1=live["f1"] + 2.0)
    store = open_store(str(tmp_path / "log.sqlite3"))
    store.append(_records(v1, shifted, 1000.0))
    requested: list = []
    runner = _runner(store)
    runner.retrain = lambda *args: requested.append(args)
    events = [e for e in _drain(runner) if e.kind == "feature_drift"]
    weights = {e.event.feature: e.event.details["attribution_weight"] for e in events}
    assert "f1" in weights and 0.1 < weights["f1"] < 0.9
    # the retrain request's evidence carries it too
    evidence = drift_evidence(e.event for e in requested[0][3])
    f1 = next(f for f in evidence["features"] if f["feature"] == "f1")
    assert f1["attribution_weight"] == weights["f1"]


def test_cli_shows_versions_side_by_side(tmp_path, versions, capsys) -> None:
    from service.cli import main
    from service.config import get_settings
    from tests.service.gateway_helpers import configure

    v1, v2, live = versions
    configure(tmp_path)
    store = open_store(get_settings().resolved_store_url)
    store.append(_records(v2, live.iloc[:300], 1000.0))
    runner = _runner(store)
    _drain(runner)
    runner.checkpoint()
    assert main(["models", "attributions", NAME, "--versions", f"{v1.version},{v2.version}"]) == 0
    table = capsys.readouterr().out.splitlines()
    f0 = next(line for line in table if line.startswith("f0 "))
    cells = [c for c in f0.split("  ") if c.strip()]
    assert cells[1].strip().endswith("(#1)")  # v1 leans on f0 most
    assert cells[2].strip() == "-"  # v1 served nothing here
    assert not cells[3].strip().endswith("(#1)") and "%" in cells[4]  # v2: baseline, live
    assert any(line.startswith(f"{v2.version}: explainer tree, sampled 300") for line in table)
    assert main(["models", "attributions", NAME, "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in view["versions"]][-2:] == [v1.version, v2.version]
    assert main(["models", "attributions", NAME, "--versions", "nope"]) == 1
