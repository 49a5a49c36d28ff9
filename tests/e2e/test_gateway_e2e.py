"""End to end on a real ``bentoml serve``: /predict, the v2 protocol with tritonclient, metrics."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import numpy as np
import tritonclient.http as triton

from models.registry import get_model


def _rows(name: str, n: int) -> list[dict]:
    entry = get_model(name)
    return entry.reference()[entry.card.feature_names].head(n).to_dict("records")


def test_predict_and_feedback_over_http(gateway):
    rows = _rows("breast-cancer", 4)
    response = httpx.post(f"{gateway.url}/predict",
                          json={"model": "breast-cancer", "inputs": rows}, timeout=10)
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    feedback = httpx.post(f"{gateway.url}/feedback", timeout=10, json={"items": [
        {"id": ids[0], "label": "benign"}, {"id": "not-a-prediction", "label": "benign"}]})
    assert feedback.status_code == 200, feedback.text
    assert feedback.json()["accepted"] == [ids[0]]
    assert feedback.json()["unknown"] == ["not-a-prediction"]
    bad = httpx.post(f"{gateway.url}/feedback", timeout=10,
                     json={"items": [{"id": ids[1], "label": "maybe"}]})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_label"


def test_tritonclient_speaks_v2_unchanged(gateway):
    client = triton.InferenceServerClient(url=f"127.0.0.1:{gateway.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("diabetes")
    metadata = client.get_model_metadata("diabetes")
    names = [i["name"] for i in metadata["inputs"]]
    rows = _rows("diabetes", 3)
    inputs = []
    for name in names:
        tensor = triton.InferInput(name, [3], "FP64")
        tensor.set_data_from_numpy(np.array([r[name] for r in rows], dtype=np.float64))
        inputs.append(tensor)
    result = client.infer("diabetes", inputs)
    expected = get_model("diabetes").reference()["__prediction__"].head(3).to_numpy()
    np.testing.assert_allclose(result.as_numpy("predict"), expected, rtol=1e-9)
    assert len(result.as_numpy("prediction_id")) == 3
    # categorical features travel as BYTES tensors
    risk_rows = _rows("diabetes-risk", 2)
    meta = client.get_model_metadata("diabetes-risk")
    tensors = []
    for spec in meta["inputs"]:
        values = [r[spec["name"]] for r in risk_rows]
        dtype = {"FP64": np.float64, "BOOL": np.bool_, "BYTES": np.object_}[spec["datatype"]]
        tensor = triton.InferInput(spec["name"], [2], spec["datatype"])
        tensor.set_data_from_numpy(np.array(values, dtype=dtype))
        tensors.append(tensor)
    out = client.infer("diabetes-risk", tensors)
    assert out.as_numpy("predict_proba").shape == (2, 2)


def test_v2_bad_shape_is_a_4xx(gateway):
    body = {"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP64", "data": [1.0] * 10}]}
    response = httpx.post(f"{gateway.url}/v2/models/diabetes/infer", json=body, timeout=10)
    assert response.status_code == 422
    assert response.json()["type"] == "wrong_shape"  # v2 errors: {"error": message, ...}
    assert isinstance(response.json()["error"], str)


def test_metrics_exposed_and_promtool_clean(gateway):
    httpx.post(f"{gateway.url}/predict", timeout=10,
               json={"model": "diabetes", "inputs": _rows("diabetes", 2)})
    httpx.post(f"{gateway.url}/predict", timeout=10, json={"model": "nope", "inputs": [{}]})
    # client-chosen names and scanner paths must not become label values
    httpx.post(f"{gateway.url}/v2/models/evil-name-1/infer", timeout=10, json={"inputs": []})
    httpx.get(f"{gateway.url}/wp-scan-probe", timeout=10)
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert "evil-name-1" not in text and "wp-scan-probe" not in text
    assert 'endpoint="/v2/models/{name}/infer"' in text
    assert 'driftgate_predictions_total{arm="default",model="diabetes"' in text
    assert 'driftgate_prediction_errors_total{model="_unknown",reason="unknown_model"}' in text
    assert "driftgate_prediction_latency_seconds_bucket" in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/ensure_prometheus.sh"
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True)
    # promtool exits 1 on lint warnings, 3 on parse errors; BentoML's own metrics
    # carry lint warnings we do not control, so only ours must be clean.
    ours = [line for line in check.stdout.decode().splitlines() + check.stderr.decode()
            .splitlines() if "driftgate_" in line]
    assert check.returncode in (0, 1), check.stderr
    assert not ours, ours
