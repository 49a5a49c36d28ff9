"""Multi-row requests on the columnar path: validated column by column with every problem
listed by row and feature, rejected whole when one row is bad, logged as one block whose
records carry the ids the client got, in order."""

from __future__ import annotations

from typing import Any

import pytest

from models.registry import get_model
from tests.service.gateway_helpers import bound_context, make_client


def rows(name: str, n: int) -> list[dict[str, Any]]:
    entry = get_model(name)
    frame = entry.reference()[entry.card.feature_names]
    return frame.sample(n, replace=True, random_state=1).to_dict("records")


@pytest.fixture()
def client(tmp_path, demo_models):  # type: ignore[no-untyped-def]
    with make_client(tmp_path) as c:
        yield c


def test_a_batch_is_logged_as_one_block_with_the_ids_the_client_got(client) -> None:
    inputs = rows("diabetes", 64)
    response = client.post("/predict", json={"model": "diabetes", "inputs": inputs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["ids"]) == len(set(body["ids"])) == 64
    store = bound_context().store
    blocks = store.read_blocks_after(0, 1000)
    assert len(blocks) == 1
    (block,) = blocks
    assert block.ids == body["ids"] and list(block.predictions) == body["predictions"]
    assert list(block.features["bmi"]) == [row["bmi"] for row in inputs]
    records = store.get(body["ids"][::-1])  # every row is found by its own id
    assert [r.id for r in records] == body["ids"]
    assert [r.features for r in records] == inputs
    assert [r.offset for r in records] == list(range(block.offset, block.offset + 64))


def test_a_classifier_batch_keeps_each_rows_probabilities(client) -> None:
    inputs = rows("breast-cancer", 5)
    body = client.post("/predict", json={"model": "breast-cancer", "inputs": inputs}).json()
    logged = bound_context().store.get(body["ids"])
    assert [r.probabilities for r in logged] == body["probabilities"]
    assert [r.prediction for r in logged] == body["predictions"]


def test_every_problem_of_a_batch_is_listed_by_row_and_feature_in_row_order(client) -> None:
    inputs = rows("diabetes", 64)
    inputs[3] = inputs[3] | {"bmi": "x"}
    inputs[3].pop("bp")
    inputs[10] = inputs[10] | {"age": None, "s1": float("inf")}
    inputs[40] = inputs[40] | {"bmi": True}
    inputs[41] = "not a row"
    body = {"model": "diabetes", "inputs": inputs}
    response = client.post("/predict", content=_json(body),
                           headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["details"]["problems"]
    assert [(p["row"], p.get("feature"), p["type"]) for p in problems] == [
        (3, "bp", "missing_feature"),  # a row with wrong keys: its values are not checked
        (10, "age", "null_value"),
        (10, "s1", "infinite_value"),
        (40, "bmi", "wrong_type"),
        (41, None, "invalid_row"),
    ]
    assert bound_context().store.read_after(0, 10) == []  # nothing of the batch is logged


def test_a_batch_with_one_bad_row_is_rejected_whole_and_counted(client) -> None:
    from prometheus_client import REGISTRY

    def errors() -> float:
        labels = {"model": "diabetes", "reason": "wrong_type"}
        return REGISTRY.get_sample_value("driftgate_prediction_errors_total", labels) or 0.0

    before = errors()
    inputs = rows("diabetes", 500)
    inputs[499] = inputs[499] | {"sex": "male"}
    response = client.post("/predict", json={"model": "diabetes", "inputs": inputs})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["problems"] == [
        {"row": 499, "feature": "sex", "type": "wrong_type",
         "message": response.json()["error"]["details"]["problems"][0]["message"]}]
    assert errors() == before + 1
    assert bound_context().store.read_after(0, 10) == []


def test_problems_are_listed_for_the_first_rows_only(client) -> None:
    inputs = [row | {"bmi": "x", "bp": "y"} for row in rows("diabetes", 100)]
    response = client.post("/predict", json={"model": "diabetes", "inputs": inputs})
    problems = response.json()["error"]["details"]["problems"]
    assert len(problems) == 20  # whole rows, at least MAX_REPORTED_PROBLEMS
    assert [p["row"] for p in problems] == [i // 2 for i in range(20)]


def test_quality_issues_of_a_batch_are_counted_per_value(client) -> None:
    from prometheus_client import REGISTRY

    def out_of_range() -> float:
        labels = {"model": "diabetes-risk", "feature": "bmi", "issue": "out_of_range"}
        return REGISTRY.get_sample_value("driftgate_data_quality_issues_total", labels) or 0.0

    before = out_of_range()
    inputs = rows("diabetes-risk", 30)
    for i in (0, 7, 29):
        inputs[i] = inputs[i] | {"bmi": 500.0}
    response = client.post("/predict", json={"model": "diabetes-risk", "inputs": inputs})
    assert response.status_code == 200, response.text
    assert out_of_range() == before + 3


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()  # writes Infinity, which the gateway reads


def test_the_validated_matrix_is_the_model_input_the_rows_would_make(demo_models) -> None:
    from service.runtime import LoadedModel

    model = LoadedModel.load("diabetes")
    inputs = rows("diabetes", 50)
    inputs[7] = inputs[7] | {"age": int(inputs[7]["age"])}  # ints and floats mix
    batch = model.validator.validate(inputs)
    assert batch.matrix is not None and batch.matrix.shape == (50, len(model.card.features))
    from_rows = model._adapter.from_rows(inputs, model.card.feature_names)
    assert (batch.matrix == from_rows).all()
    assert model.predict(inputs, batch.matrix) == model.predict(inputs)
    mixed = LoadedModel.load("diabetes-risk")  # categorical and boolean features
    risk_rows = rows("diabetes-risk", 5)
    assert mixed.validator.validate(risk_rows).matrix is None  # built from the rows
