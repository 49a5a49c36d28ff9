"""Drift alarms on real data through a real ``bentoml serve``: a model registered with half of
scikit-learn's breast cancer rows as reference sees stationary traffic from the other half
(the same population, a different sample) and raises no drift event; then malignant rows
only arrive (a real change of the population) and a drift event names the change and its
effect, which the Drift dashboard's metric carries."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.e2e.conftest import FAST_MONITOR, Server, start_gateway_retrying, stop_gateway
from tests.e2e.traffic import metric_value, send, wait_for

MODEL = "real-drift-probe"
DRIFT = ("feature_drift", "prediction_drift", "multivariate_drift")


def _data() -> tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    X = data.data[[c for c in data.data.columns if c.startswith("mean ")]]
    X = X.rename(columns=lambda c: c.replace(" ", "_"))
    y = pd.Series(np.asarray(data.target_names)[data.target], name="diagnosis")
    order = np.random.default_rng(0).permutation(len(X))
    return X, y, order[: len(X) // 2], order[len(X) // 2 :]


@pytest.fixture(scope="module")
def real_gateway(demo_models, tmp_path_factory) -> Iterator[Server]:
    from models.registry import register_model

    X, y, ref, _ = _data()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    register_model(MODEL, model, X, y, reference=X.iloc[ref], reference_target=y.iloc[ref],
                   trigger={"type": "test"})
    server = start_gateway_retrying(tmp_path_factory.mktemp("real-drift"), {
        **FAST_MONITOR, "DRIFTGATE_MONITOR_POLL_SECONDS": "0.05"})
    yield server
    stop_gateway(server)


def _events(url: str) -> list[dict]:
    return httpx.get(f"{url}/monitoring/events", params={"model": MODEL},
                     timeout=10).json()["events"]


def _caught_up(url: str) -> bool:
    return metric_value(url, "driftgate_monitor_lag_records", {}) == 0.0


def test_stationary_real_traffic_is_quiet_and_a_real_change_is_caught(real_gateway) -> None:
    url = real_gateway.url
    X, y, _, live = _data()
    rng = np.random.default_rng(1)
    rows = X.iloc[live].to_dict(orient="records")
    stationary = [rows[i] for i in rng.integers(0, len(rows), 3000)]
    send(url, MODEL, stationary, per_request=50)
    wait_for(lambda: _caught_up(url) and metric_value(
        url, "driftgate_drift_active", {"model": MODEL, "feature": "mean_radius"}) is not None,
        timeout=60, what="the monitor processing the stationary traffic")
    assert [e for e in _events(url) if e["kind"] in DRIFT] == []

    malignant = X.iloc[live][(y.iloc[live] == "malignant").to_numpy()].to_dict(orient="records")
    ids = send(url, MODEL, [malignant[i] for i in rng.integers(0, len(malignant), 300)],
               per_request=10)
    found = wait_for(lambda: [e for e in _events(url) if e["kind"] in DRIFT], timeout=30,
                     what="a drift event")
    assert isinstance(found, list)
    event = found[0]
    assert event["record_id"] in ids
    assert ids.index(event["record_id"]) < 100  # caught within 100 records of the change
    features = [e for e in found if e["kind"] == "feature_drift"]
    assert features, found
    effect = features[0]["details"]["effect"]
    low, high = effect["mean_shift_ci"]
    assert low <= effect["mean_shift"] <= high and abs(effect["mean_shift"]) > 0.3
    wait_for(lambda: metric_value(url, "driftgate_drift_effect", {
        "model": MODEL, "feature": features[0]["feature"], "measure": "mean_shift",
        "bound": "estimate"}) is not None, timeout=20, what="the effect on /metrics")
