"""Edge cases an attacker or a careless client sends: every answer a JSON 4xx, never a 5xx."""

from __future__ import annotations

import json

import pytest

from service.times import parse_time
from tests.service.test_gateway_api import _error, _v2_error, rows

JSON = {"content-type": "application/json"}
POSTS = ["/predict", "/feedback", "/alerts/alertmanager", "/v2/models/diabetes/infer"]


def _type(response) -> str:
    body = response.json()
    return body["type"] if isinstance(body["error"], str) else body["error"]["type"]


@pytest.mark.parametrize("path", POSTS)
def test_deeply_nested_json_is_a_400_on_every_post_endpoint(client, path):
    deep = "[" * 5000 + "]" * 5000
    response = client.post(path, content=deep, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nested deeper" in response.text


def test_deep_v2_tensor_data_is_a_400(client):
    data = "[" * 900 + "1.0" + "]" * 900
    tensor = '{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": ' + data + "}"
    body = '{"inputs": [' + tensor + "]}"
    response = client.post("/v2/models/diabetes/infer", content=body, headers=JSON)
    _v2_error(response, 400, "malformed_json")


def test_moderately_nested_but_valid_bodies_still_work(client):
    row = rows("diabetes", 1)[0]
    tensor = {"name": "all", "shape": [1, len(row)], "datatype": "FP64",
              "data": [[list(row.values())]]}
    response = client.post("/v2/models/diabetes/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("bad", ["\ud800", "a\u0000b"], ids=["lone-surrogate", "nul"])
def test_bad_strings_are_422_not_model_errors(client, bad):
    from tests.service.test_gateway_api import _error_count

    row = {**rows("diabetes-risk", 1)[0], "sex": bad}
    before = _error_count(client, "diabetes-risk", "model_error")
    text = json.dumps({"model": "diabetes-risk", "inputs": [row]})  # ASCII escapes
    _error(client.post("/predict", content=text, headers=JSON), 422, "invalid_string")
    feedback = json.dumps({"items": [{"id": bad, "label": "high"}]})
    _error(client.post("/feedback", content=feedback, headers=JSON), 422, "invalid_string")
    assert _error_count(client, "diabetes-risk", "model_error") == before


def test_valid_surrogate_pairs_and_nan_literals_still_parse(client):
    row = {**rows("diabetes-risk", 1)[0], "sex": "\U0001f600"}
    text = json.dumps({"model": "diabetes-risk", "inputs": [row]})
    response = client.post("/predict", content=text, headers=JSON)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", ["__main__", "é", "UPPER", "a" * 64, "-x"])
def test_invalid_model_names_are_404(client, name):
    _error(client.get(f"/models/{name}"), 404, "unknown_model")


@pytest.mark.parametrize("path", ["/predict", "/feedback", "/alerts/alertmanager"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
def test_json_endpoints_refuse_other_content_types(client, path, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=b'{"model": "diabetes"}', headers=headers)
    _error(response, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(client):
    body = json.dumps({"model": "diabetes", "inputs": rows("diabetes", 1)})
    response = client.post("/predict", content=body,
                           headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200, response.text


def test_v2_refuses_form_posts_but_takes_json_binary_and_no_content_type(client):
    row = rows("diabetes", 1)[0]
    tensor = {"name": "all", "shape": [1, len(row)], "datatype": "FP64",
              "data": list(row.values())}
    body = json.dumps({"inputs": [tensor]}).encode()
    url = "/v2/models/diabetes/infer"
    _v2_error(client.post(url, content=body, headers={"content-type": "text/plain"}), 415,
              "unsupported_media_type")
    for headers in ({}, JSON, {"content-type": "application/octet-stream"}):
        assert client.post(url, content=body, headers=headers).status_code == 200


def test_unknown_paths_and_methods_answer_json(client):
    _error(client.get("/no/such/path"), 404, "not_found")
    response = client.get("/predict")
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    _error(client.delete("/feedback"), 405, "method_not_allowed")
    _v2_error(client.get("/v2/nothing/here"), 404, "not_found")


def test_events_since_takes_unix_seconds_and_iso_8601(client):
    for since in ("0", "1970-01-01T00:00:00Z", "2026-11-01"):
        response = client.get("/monitoring/events", params={"since": since})
        assert response.status_code == 200, response.text
    _error(client.get("/monitoring/events", params={"since": "last tuesday"}), 422,
           "invalid_request")
    _error(client.get("/monitoring/events", params={"since": "nan"}), 422, "invalid_request")
    assert parse_time("2026-11-01T01:00:00+01:00") == parse_time("2026-11-01")


def test_request_id_is_bounded(client):
    from service.api_context import gateway_context

    body = {"model": "diabetes", "inputs": rows("diabetes", 2)}
    long = client.post("/predict", json=body, headers={"x-request-id": "r" * 60_000})
    short = client.post("/predict", json=body, headers={"x-request-id": "req-42"})
    assert long.status_code == short.status_code == 200
    store = gateway_context().store
    stored = store.get(long.json()["ids"] + short.json()["ids"])
    ids = {r.id: r.request_id for r in stored}
    assert all(len(ids[i]) == 32 for i in long.json()["ids"])  # generated instead
    assert all(ids[i] == "req-42" for i in short.json()["ids"])


V2_DATATYPES = [
    ("INT64", [1.5], 422, "wrong_datatype"),
    ("INT8", [300], 422, "wrong_datatype"),
    ("BOOL", [1], 422, "wrong_datatype"),
    ("FP32", ["1"], 422, "wrong_datatype"),
    ("FP16", [1e6], 422, "infinite_value"),
]


@pytest.mark.parametrize(("datatype", "data", "status", "type_"), V2_DATATYPES)
def test_v2_datatypes_are_honoured_or_rejected(client, datatype, data, status, type_):
    row = rows("diabetes", 1)[0]
    inputs = [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in row.items()]
    inputs[0] = {**inputs[0], "datatype": datatype, "data": data}
    response = client.post("/v2/models/diabetes/infer", json={"inputs": inputs})
    _v2_error(response, status, type_)


def test_v2_fp32_inputs_are_rounded_to_fp32(client):
    from service.api_context import gateway_context

    row = rows("diabetes", 1)[0]
    inputs = [{"name": k, "shape": [1], "datatype": "FP32", "data": [0.1]} for k in row]
    response = client.post("/v2/models/diabetes/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    ids = next(o for o in response.json()["outputs"] if o["name"] == "prediction_id")["data"]
    (record,) = gateway_context().store.get(ids)
    assert set(record.features.values()) == {0.10000000149011612}


def test_v2_binary_bool_must_be_0_or_1(client):
    header = json.dumps({"inputs": [{"name": "high_glucose", "shape": [1], "datatype": "BOOL",
                                     "parameters": {"binary_data_size": 1}}]}).encode()
    response = client.post("/v2/models/diabetes-risk/infer", content=header + b"\x07",
                           headers={"inference-header-content-length": str(len(header))})
    _v2_error(response, 422, "invalid_tensor")


def test_feedback_label_beyond_int64_is_stored_and_relabel_works(client):
    ids = client.post("/predict", json={"model": "diabetes", "inputs": rows("diabetes", 1)})
    (pid,) = ids.json()["ids"]
    for label in (2**70, 3):
        response = client.post("/feedback", json={"items": [{"id": pid, "label": label}]})
        assert response.status_code == 200, response.text
    _error(client.post("/feedback", json={"items": [{"id": pid, "label": 10**400}]}), 422,
           "invalid_label")


def test_alertmanager_payload_is_bounded(client):
    from service.alerts import MAX_ALERTS

    alert = {"status": "firing", "labels": {"alertname": "x"}, "fingerprint": "f"}
    body = {"version": "4", "alerts": [alert] * (MAX_ALERTS + 1)}
    _error(client.post("/alerts/alertmanager", json=body), 413, "too_many_alerts")


def test_paths_with_newlines_answer_json(client):
    _error(client.get("/models/a%0Ab"), 404, "not_found")
    _v2_error(client.post("/v2/models/x%0Ay/infer", json={}), 404, "not_found")


def test_small_reference_warns_and_its_wider_thresholds_are_shown(client, demo_models):
    import warnings

    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from models.registry import MIN_REFERENCE_ROWS, ReferenceTooSmall, register_model
    from service.calibration_view import calibration

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = register_model("tiny-ref", model, X, y, reference=X.head(36))
    assert [w.category for w in caught] == [ReferenceTooSmall]
    assert small.card.reference_rows == 36 < MIN_REFERENCE_ROWS
    assert "36 rows" in small.card.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full reference registers silently
        full = register_model("tiny-ref", model, X, y, reference=X)
    assert full.card.reference_rows == len(X) and full.card.warnings == []
    narrow = calibration("tiny-ref", full.version)["streams"]
    wide = calibration("tiny-ref", small.version)["streams"]
    wider = [f for f in X.columns if wide[f]["threshold"] > narrow[f]["threshold"]]
    assert len(wider) >= len(X.columns) // 2, (wide, narrow)

    detail = client.get("/models/diabetes").json()
    (served,) = [v for v in detail["versions"] if v["version"] == demo_models["diabetes"]]
    assert served["card"]["reference_rows"] > MIN_REFERENCE_ROWS
    streams = served["calibration"]["streams"]
    assert set(X.columns) <= set(streams) and all(streams[f]["threshold"] > 0 for f in X.columns)


def test_wrong_method_on_an_included_router_is_405(client):
    response = client.get("/v2/models/diabetes/infer")
    assert response.status_code == 405, response.text
    assert "POST" in response.headers["allow"]
    _error(client.post("/models/diabetes/routing/history"), 405, "method_not_allowed")
