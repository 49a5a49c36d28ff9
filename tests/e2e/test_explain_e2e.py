"""End to end on a real ``bentoml serve``: a logged prediction explained by its id, and the
monitor's live attribution reaching /metrics and the side-by-side view."""

from __future__ import annotations

import time

import httpx

from models.registry import get_model


def _rows(name: str, n: int) -> list[dict]:
    entry = get_model(name)
    return entry.reference()[entry.card.feature_names].head(n).to_dict("records")


def test_logged_prediction_explained_by_id(gateway):
    response = httpx.post(f"{gateway.url}/predict", timeout=10,
                          json={"model": "breast-cancer", "inputs": _rows("breast-cancer", 60)})
    assert response.status_code == 200, response.text
    body = response.json()
    pid, label = body["ids"][3], body["predictions"][3]
    explained = httpx.get(f"{gateway.url}/predictions/{pid}/explanation", timeout=30)
    assert explained.status_code == 200, explained.text
    got = explained.json()
    assert (got["id"], got["version"], got["prediction"]) == (pid, body["version"], label)
    explanation = got["explanation"]
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert abs(total - explanation["output"]) < 1e-6
    assert explanation["explainer"] == "linear" and explanation["explained_class"] == label
    missing = httpx.get(f"{gateway.url}/predictions/{'0' * 32}/explanation", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "unknown_prediction"

    # the monitor explains a sample of the logged records (a few percent of a linear
    # model's at the default budget): gauges and the live view follow
    deadline = time.monotonic() + 60
    series = 'driftgate_feature_attribution{feature="mean_radius",model="breast-cancer"'
    more = {"model": "breast-cancer", "inputs": _rows("breast-cancer", 200)}
    while time.monotonic() < deadline:
        assert httpx.post(f"{gateway.url}/predict", json=more, timeout=10).status_code == 200
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        view = httpx.get(f"{gateway.url}/models/breast-cancer/attributions", timeout=10).json()
        live = [v for v in view["versions"] if v["live"]]
        if series in metrics and live:
            break
        time.sleep(1)
    assert series in metrics, "no attribution gauge"
    assert live and live[0]["sampled"] > 0 and live[0]["explainer"]["method"] == "linear"
