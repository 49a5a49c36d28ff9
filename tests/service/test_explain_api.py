"""Explanation routes on the real gateway app: /explain, a logged prediction's explanation,
versions side by side, and their errors (never a 5xx for a model that cannot be explained)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.registry import get_model, register_model
from tests.service.gateway_helpers import make_client


def rows(name: str, n: int = 3) -> list[dict[str, Any]]:
    entry = get_model(name)
    return entry.reference()[entry.card.feature_names].head(n).to_dict("records")


def _adds_up(explanation: dict) -> bool:
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    return abs(total - explanation["output"]) < 1e-6


def test_explain_rows_without_logging(client, demo_models):
    response = client.post("/explain", json={"model": "breast-cancer",
                                             "inputs": rows("breast-cancer", 2)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == demo_models["breast-cancer"] and body["logged"] is False
    assert "ids" not in body and len(body["explanations"]) == 2
    for explanation, predicted in zip(body["explanations"], body["predictions"], strict=True):
        assert explanation["explainer"] == "linear"
        assert explanation["output_space"] == "log_odds"
        assert explanation["explained_class"] == predicted and _adds_up(explanation)
        assert set(explanation["contributions"]) == set(rows("breast-cancer", 1)[0])


def test_logged_prediction_explained_by_the_version_that_served_it(client, demo_models):
    predicted = client.post("/predict", json={"model": "diabetes-risk",
                                              "inputs": rows("diabetes-risk", 1)}).json()
    pid = predicted["ids"][0]
    response = client.get(f"/predictions/{pid}/explanation")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["version"]) == (pid, demo_models["diabetes-risk"])
    explanation = body["explanation"]
    assert explanation["explainer"] == "permutation" and _adds_up(explanation)
    label = predicted["predictions"][0]
    assert explanation["explained_class"] == label
    assert explanation["output"] == pytest.approx(predicted["probabilities"][0][label], abs=1e-9)


def test_errors_are_4xx_json(client):
    cases = [
        (client.get("/predictions/0123456789abcdef/explanation"), 404, "unknown_prediction"),
        (client.post("/explain", json={"model": "nope", "inputs": [{}]}), 404, "unknown_model"),
        (client.post("/explain", json={"model": "diabetes", "inputs": [{"age": 1.0}]}), 422,
         "missing_feature"),
        (client.post("/explain", json={"model": "diabetes", "inputs": [], "x": 1}), 422,
         "invalid_body"),
        (client.post("/explain", json={"model": {}, "inputs": []}), 422, "invalid_body"),
        (client.get("/models/nope/attributions"), 404, "unknown_model"),
        (client.get("/models/diabetes/attributions?versions=nope"), 404, "unknown_version"),
    ]
    for response, status, kind in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["type"] == kind


def test_attributions_side_by_side(client, demo_models):
    version = demo_models["diabetes"]
    body = client.get(f"/models/diabetes/attributions?versions={version}").json()
    assert [v["version"] for v in body["versions"]] == [version]
    baseline = body["versions"][0]["baseline"]
    card = get_model("diabetes", version).card
    assert card.explainer is not None
    top = max(card.explainer.importance, key=card.explainer.importance.__getitem__)
    assert baseline[top]["rank"] == 1
    assert sum(f["share"] for f in baseline.values()) == pytest.approx(1.0)
    assert {row["feature"] for row in body["features"]} == set(card.feature_names)


class LabelsOnly:
    """A classifier with labels out and no scores: no explainer can attribute it."""

    classes_ = np.array(["no", "yes"])

    def predict(self, x: Any) -> np.ndarray:
        return np.array(["yes"] * len(x))


def test_unexplainable_model_answers_422(tmp_path):
    X = pd.DataFrame({"a": np.linspace(0, 1, 120), "b": np.linspace(1, 2, 120)})
    register_model("labels-only", LabelsOnly(), X,
                   pd.Series(np.where(X["a"] > 0.5, "yes", "no"), name="y"))
    with make_client(tmp_path) as c:
        response = c.post("/explain", json={"model": "labels-only",
                                            "inputs": [{"a": 0.2, "b": 1.5}]})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["type"] == "unexplainable" and "predict_proba" in error["details"]["reason"]
        pid = c.post("/predict", json={"model": "labels-only",
                                       "inputs": [{"a": 0.2, "b": 1.5}]}).json()["ids"][0]
        response = c.get(f"/predictions/{pid}/explanation")
        assert response.status_code == 422 and response.json()["error"]["type"] == "unexplainable"
        view = c.get("/models/labels-only/attributions").json()
        assert view["versions"][0]["explainer"]["method"] == "none"
