"""HTTP behaviour of the gateway through its ASGI app: endpoints and every bad-input case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.registry import get_model


def rows(name: str, n: int = 3) -> list[dict[str, Any]]:
    entry = get_model(name)
    return entry.reference()[entry.card.feature_names].head(n).to_dict("records")


def test_predict_classifier_returns_ids_predictions_probabilities(client, demo_models):
    body = {"model": "breast-cancer", "inputs": rows("breast-cancer")}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == demo_models["breast-cancer"]
    assert len(body["ids"]) == len(set(body["ids"])) == 3
    assert set(body["predictions"]) <= {"benign", "malignant"}
    for probs in body["probabilities"]:
        assert set(probs) == {"benign", "malignant"}
        assert sum(probs.values()) == pytest.approx(1.0)


def test_predict_matches_reference_predictions(client):
    ref = get_model("diabetes").reference().head(5)
    response = client.post("/predict", json={"model": "diabetes", "inputs": rows("diabetes", 5)})
    assert response.json()["predictions"] == pytest.approx(ref["__prediction__"].tolist())
    assert "probabilities" not in response.json()


def test_predict_categorical_model_and_pinned_version(client, demo_models):
    version = demo_models["diabetes-risk"]
    body = {"model": "diabetes-risk", "version": version, "inputs": rows("diabetes-risk")}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == version
    assert set(response.json()["predictions"]) <= {"high", "low"}


def test_models_list_and_detail_show_card_and_lineage(client, demo_models):
    listed = client.get("/models").json()["models"]
    assert {m["name"] for m in listed} >= set(demo_models)
    detail = client.get("/models/diabetes-risk").json()
    card = detail["versions"][-1]["card"]
    kinds = {f["name"]: f["kind"] for f in card["features"]}
    assert kinds == {"sex": "categorical", "age_band": "categorical", "bmi": "numeric",
                     "bp": "numeric", "high_glucose": "boolean"}
    assert detail["versions"][-1]["lineage"]["data_fingerprint"].startswith("sha256:")
    assert detail["serving"]["default"] == demo_models["diabetes-risk"]
    assert client.get("/models/nope").status_code == 404


def _error(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == type_
    assert error["message"]
    return error


def _v2_error(response, status: int, type_: str) -> dict:
    """The Open Inference Protocol's error body: ``{"error": message}`` (+ type, details)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert body["type"] == type_
    return body


def _error_count(client, model: str, reason: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "driftgate_prediction_errors_total", {"model": model, "reason": reason}
    )
    return value or 0.0


BAD_INPUTS = [
    ("unknown model", {"model": "nope", "inputs": [{}]}, 404, "unknown_model", "_unknown"),
    ("unknown version", {"model": "diabetes", "version": "v9", "inputs": [{}]}, 404,
     "unknown_version", "diabetes"),
    ("missing feature", {"model": "diabetes", "drop": "bmi"}, 422, "missing_feature", "diabetes"),
    ("extra feature", {"model": "diabetes", "extra": ("zip", 1)}, 422, "unknown_feature",
     "diabetes"),
    ("wrong type", {"model": "diabetes", "set": ("bmi", "high")}, 422, "wrong_type", "diabetes"),
    ("bool for number", {"model": "diabetes", "set": ("bmi", True)}, 422, "wrong_type",
     "diabetes"),
    ("null not nullable", {"model": "diabetes", "set": ("bmi", None)}, 422, "null_value",
     "diabetes"),
    ("number for category", {"model": "diabetes-risk", "set": ("sex", 1)}, 422, "wrong_type",
     "diabetes-risk"),
    ("string for boolean", {"model": "diabetes-risk", "set": ("high_glucose", "yes")}, 422,
     "wrong_type", "diabetes-risk"),
    ("empty inputs", {"model": "diabetes", "inputs": []}, 422, "invalid_inputs", "diabetes"),
    ("inputs not a list", {"model": "diabetes", "inputs": {"a": 1}}, 422, "invalid_inputs",
     "diabetes"),
    ("model missing", {"inputs": [{}]}, 422, "invalid_body", "_unknown"),
    ("extra top-level field", {"model": "diabetes", "inputs": [{}], "foo": 1}, 422,
     "invalid_body", "diabetes"),
]


@pytest.mark.parametrize(("case", "spec", "status", "type_", "label"), BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_json_4xx_and_is_counted(client, case, spec, status, type_, label):
    body = dict(spec)
    if "inputs" not in body:
        row = rows(body["model"], 1)[0]
        if "drop" in body:
            del row[body.pop("drop")]
        if "extra" in body:
            key, value = body.pop("extra")
            row[key] = value
        if "set" in body:
            key, value = body.pop("set")
            row[key] = value
        body["inputs"] = [row]
    before = _error_count(client, label, type_)
    _error(client.post("/predict", json=body), status, type_)
    assert _error_count(client, label, type_) == before + 1


def test_nan_and_infinity_rejected_for_non_nullable_feature(client):
    row = rows("diabetes", 1)[0]
    text = '{"model": "diabetes", "inputs": [%s]}'
    for literal, type_ in (("NaN", "nan_value"), ("Infinity", "infinite_value")):
        fields = ", ".join(
            f'"{k}": {literal if k == "bmi" else v}' for k, v in row.items()
        )
        response = client.post("/predict", content=text % ("{" + fields + "}"),
                               headers={"content-type": "application/json"})
        error = _error(response, 422, type_)
        assert error["details"]["problems"][0]["feature"] == "bmi"


def test_out_of_range_and_unseen_category_accepted_and_counted(client):
    from prometheus_client import REGISTRY

    def quality(feature: str, issue: str) -> float:
        labels = {"model": "diabetes-risk", "feature": feature, "issue": issue}
        return REGISTRY.get_sample_value("driftgate_data_quality_issues_total", labels) or 0.0

    row = rows("diabetes-risk", 1)[0] | {"bmi": 500.0, "age_band": "90+"}
    before = quality("bmi", "out_of_range"), quality("age_band", "unseen_category")
    response = client.post("/predict", json={"model": "diabetes-risk", "inputs": [row]})
    assert response.status_code == 200, response.text
    assert quality("bmi", "out_of_range") == before[0] + 1
    assert quality("age_band", "unseen_category") == before[1] + 1


def test_malformed_json_and_oversized_body(client):
    _error(client.post("/predict", content=b'{"model": ', headers={"content-type":
           "application/json"}), 400, "malformed_json")
    big = b'{"model": "diabetes", "inputs": [' + b" " * (5 * 1024 * 1024) + b"]}"
    _error(client.post("/predict", content=big, headers={"content-type": "application/json"}),
           413, "body_too_large")


def test_bad_row_rejects_whole_request_and_lists_every_problem(client):
    good, bad = rows("diabetes", 2)
    bad = bad | {"bmi": "x", "bp": None}
    error = _error(client.post("/predict", json={"model": "diabetes", "inputs": [good, bad]}),
                   422, "wrong_type")
    problems = error["details"]["problems"]
    assert {(p["row"], p["feature"]) for p in problems} == {(1, "bmi"), (1, "bp")}


def test_openapi_describes_every_endpoint(client):
    paths = client.get("/docs.json").json()["paths"]
    for path in ("/predict", "/feedback", "/models", "/models/{name}", "/monitoring/status",
                 "/monitoring/events", "/alerts/alertmanager", "/v2", "/v2/health/live",
                 "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/infer",
                 "/v2/models/{name}/versions/{version}/infer", "/v2/models/{name}/ready"):
        assert path in paths, path
    schema = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "inputs" in schema["properties"]


def test_failing_model_and_failing_log_answer_json_and_are_counted(client):
    from service.api_context import gateway_context

    core = gateway_context().core
    model = core.router.route("diabetes").model
    row = rows("diabetes", 1)

    class Broken:
        def predict(self, _):
            raise RuntimeError("boom")

    class FailingSink:
        async def submit(self, records):
            raise OSError("disk full")

    estimator, model.estimator = model.estimator, Broken()
    try:
        before = _error_count(client, "diabetes", "model_error")
        error = _error(client.post("/predict", json={"model": "diabetes", "inputs": row}),
                       500, "model_error")
        assert "boom" in error["message"]
        assert _error_count(client, "diabetes", "model_error") == before + 1
    finally:
        model.estimator = estimator
    sink, core.sink = core.sink, FailingSink()
    try:
        _error(client.post("/predict", json={"model": "diabetes", "inputs": row}),
               503, "log_unavailable")
    finally:
        core.sink = sink


def test_huge_integer_is_a_4xx_not_a_crash(client):
    row = rows("diabetes", 1)[0]
    fields = ", ".join(f'"{k}": {"1" + "0" * 400 if k == "bmi" else v}' for k, v in row.items())
    body = '{"model": "diabetes", "inputs": [{' + fields + "}]}"
    response = client.post("/predict", content=body,
                           headers={"content-type": "application/json"})
    _error(response, 422, "infinite_value")


V2_BAD_BINARY = [
    ({"binary_data_size": "abc"}, b"", "invalid_tensor"),
    ({"binary_data_size": 3}, b"\x00\x01\x02", "invalid_tensor"),  # not a whole float64
]


@pytest.mark.parametrize(("params", "payload", "type_"), V2_BAD_BINARY)
def test_v2_malformed_binary_tensors_are_4xx(client, params, payload, type_):
    tensor = {"name": "bmi", "shape": [1], "datatype": "FP64", "parameters": params}
    header = json.dumps({"inputs": [tensor]}).encode()
    response = client.post("/v2/models/diabetes/infer", content=header + payload,
                           headers={"inference-header-content-length": str(len(header))})
    _v2_error(response, 422, type_)


def test_v2_tensor_name_must_be_a_string(client):
    body = {"inputs": [{"name": ["x"], "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    _v2_error(client.post("/v2/models/diabetes/infer", json=body), 422, "invalid_tensor")


def test_errors_of_every_prediction_route_are_counted_once(client):
    """Open Inference Protocol and feedback errors, each counted exactly once where the
    route answers it (service.error_counting)."""
    cases = [
        (lambda: client.post("/v2/models/diabetes/infer", json={"inputs": []}), "diabetes"),
        (lambda: client.post("/v2/models/nope/infer", json={"inputs": []}), "_unknown"),
        (lambda: client.post("/feedback", json={"items": "x"}), "_unknown"),
    ]
    for send, label in cases:
        response = send()
        assert 400 <= response.status_code < 500, response.text
        reason = response.json().get("type") or response.json()["error"]["type"]
        before = _error_count(client, label, reason)
        assert send().status_code == response.status_code
        assert _error_count(client, label, reason) == before + 1, (label, reason)
