"""Every PromQL expression of every Grafana panel, evaluated by a real Prometheus that has
scraped a real gateway after stationary and drifted traffic with feedback."""

from __future__ import annotations

import time

import httpx

from grafana.build import all_queries
from models.registry import get_model
from tests.e2e.traffic import send, shifted, wait_for

MODEL, FEATURE = "breast-cancer", "mean_area"


def _labelled_traffic(gateway, n: int, seed: int, drift: bool = False,
                      model: str = MODEL) -> None:
    url, headers = gateway.url, gateway.headers("user")
    entry = get_model(model)
    ref = entry.reference()
    picked = ref.sample(n, replace=True, random_state=seed)
    rows = picked[entry.card.feature_names].to_dict("records")
    if drift:
        rows = shifted(rows, model, FEATURE, 2.0)
    ids = send(url, model, rows, per_request=10, headers=headers)
    labels = picked["__label__"].tolist()
    items = [{"id": i, "label": label} for i, label in zip(ids, labels, strict=True)]
    response = httpx.post(f"{url}/feedback", json={"items": items}, timeout=30,
                          headers=headers)
    assert response.status_code == 200, response.text


def test_every_panel_query_evaluates_and_key_panels_have_data(alerting_gateway, observability):
    _labelled_traffic(alerting_gateway, 600, seed=31)
    _labelled_traffic(alerting_gateway, 200, seed=32, drift=True)
    _labelled_traffic(alerting_gateway, 200, seed=33, model="diabetes")
    for expr in (f'driftgate_drift_active{{model="{MODEL}",feature="{FEATURE}"}} == 1',
                 f'driftgate_model_performance{{model="{MODEL}",metric="accuracy"}}',
                 'driftgate_model_performance{model="diabetes",metric="rmse"}'):
        wait_for(lambda expr=expr: observability.query(expr), timeout=60, what=expr)
    # rates need the counters scraped while they grow: keep traffic flowing for a few scrapes
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        _labelled_traffic(alerting_gateway, 20, seed=int(deadline))
    expr = f'rate(driftgate_predictions_total{{model="{MODEL}"}}[1m]) > 0'
    wait_for(lambda: observability.query(expr), timeout=30, what=expr)
    queries = all_queries()
    assert len(queries) > 20
    empty_key_panels = []
    for query in queries:
        result = observability.query(query.expr)  # asserts status == success
        if query.key and not result:
            empty_key_panels.append((query.dashboard, query.panel, query.expr))
    assert not empty_key_panels
