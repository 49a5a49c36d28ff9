"""Adaptive batching: the batcher alone (a gated fake model, so which requests share a call is
deterministic), then the gateway under concurrent /predict and v2 requests of many sizes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from models.registry import get_model
from service.adaptive_batching import AdaptiveBatcher, chunks
from service.config import BatchingConfig, ServedModelConfig
from service.runtime import CallCost, LoadedModel, Prediction, batching_decision
from service.store.factory import open_store
from tests.service.gateway_helpers import bound_context, make_client

Rows = list[int]


class GatedModel:
    """Doubles its inputs; a call waits for ``gate`` (the test opens it) and records its
    size; a row equal to ``bad`` makes the call raise."""

    def __init__(self, bad: int | None = None, short: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.bad = bad
        self.short = short  # answer one row too few to calls of more than 3 rows
        self.threads: set[int] = set()

    def __call__(self, rows: Rows) -> list[int]:
        self.threads.add(threading.get_ident())
        self.calls.append(list(rows))
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if self.bad is not None and self.bad in rows:
            raise ValueError(f"cannot score {self.bad}")
        answer = [2 * r for r in rows]
        return answer[:-1] if self.short and len(rows) > 3 else answer


def batcher_of(model: Callable[[Rows], list[int]], **settings: Any) -> AdaptiveBatcher:
    return AdaptiveBatcher(
        model, merge=lambda parts: [r for p in parts for r in p],
        split=lambda answer, sizes: [list(c) for c in chunks(answer, sizes)], **settings,
    )


def requests(sizes: list[int], start: int = 0) -> list[Rows]:
    out, n = [], start
    for size in sizes:
        out.append(list(range(n, n + size)))
        n += size
    return out


async def behind_a_running_call(batcher: AdaptiveBatcher, model: GatedModel,
                                queued: list[Rows]) -> tuple[Any, list[Any]]:
    """One request finds the model idle; ``queued`` arrive while its call runs."""
    first = asyncio.ensure_future(batcher.submit([-1]))
    await asyncio.to_thread(model.started.wait, 30)
    rest = [asyncio.ensure_future(batcher.submit(rows)) for rows in queued]
    await asyncio.sleep(0)  # every one is queued
    model.gate.set()
    return await first, await asyncio.gather(*rest, return_exceptions=True)


def test_idle_request_alone_then_queued_merged_in_order_up_to_max_batch_size():
    model = GatedModel()
    batcher = batcher_of(model, max_batch_size=10, max_wait_ms=0)
    queued = requests([3, 4, 2, 5, 1, 6, 10, 12, 1])
    first, answers = asyncio.run(behind_a_running_call(batcher, model, queued))
    assert first == [-2]
    assert answers == [[2 * r for r in rows] for rows in queued]  # each its own, in order
    sizes = [len(c) for c in model.calls]
    # the idle model took the first request alone; then whole requests in arrival order,
    # never more than 10 rows unless one request alone is larger (never split)
    assert sizes == [1, 9, 6, 6, 10, 12, 1]
    assert [r for call in model.calls[1:] for r in call] == [r for q in queued for r in q]
    assert batcher.stats.as_json() == {
        "calls": 7, "requests": 10, "rows": 45, "largest_call_rows": 12,
        "failed_merged_calls": 0, "rows_per_call": round(45 / 7, 2)}
    assert len(model.threads) == 1 and threading.get_ident() not in model.threads


def test_a_batch_that_is_not_full_waits_until_it_fills():
    model = GatedModel()
    batcher = batcher_of(model, max_batch_size=4, max_wait_ms=60_000)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit([-1]))
        await asyncio.to_thread(model.started.wait, 30)
        three = asyncio.ensure_future(batcher.submit([1, 2, 3]))
        await asyncio.sleep(0)
        model.gate.set()
        await first
        while batcher._filled is None:  # gathering: 3 of 4 rows, the oldest waited < 60 s
            await asyncio.sleep(0.001)
        assert len(model.calls) == 1
        one = asyncio.ensure_future(batcher.submit([4]))  # fills it: dispatched at once
        return await asyncio.wait_for(asyncio.gather(three, one), 30)

    assert asyncio.run(scenario()) == [[2, 4, 6], [8]]
    assert [len(c) for c in model.calls] == [1, 4]


@pytest.mark.parametrize("short", [False, True], ids=["model-raises", "wrong-row-count"])
def test_a_failing_merged_call_is_retried_one_request_at_a_time(short):
    model = GatedModel(bad=None if short else 7, short=short)
    batcher = batcher_of(model, max_batch_size=100, max_wait_ms=0)
    queued = requests([3, 3, 3, 3])  # rows 0..11: 7 is in the third request
    _, answers = asyncio.run(behind_a_running_call(batcher, model, queued))
    if short:  # every request alone gets its answer
        assert answers == [[2 * r for r in rows] for rows in queued]
    else:  # only the request the model cannot answer fails
        assert [type(a) for a in answers] == [list, list, ValueError, list]
        assert answers[0] == [0, 2, 4] and answers[3] == [18, 20, 22]
    assert [len(c) for c in model.calls] == [1, 12, 3, 3, 3, 3]
    assert batcher.stats.retried == 1


def test_close_ends_the_thread_after_the_queue_is_answered():
    model = GatedModel()
    batcher = batcher_of(model, max_batch_size=2, max_wait_ms=0)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit([-1]))
        await asyncio.to_thread(model.started.wait, 30)
        rest = [asyncio.ensure_future(batcher.submit(r)) for r in requests([1, 1, 1])]
        await asyncio.sleep(0)
        batcher.close()  # replaced by a new configuration while requests queue
        model.gate.set()
        return [await first, *await asyncio.gather(*rest)]

    assert asyncio.run(scenario()) == [[-2], [0], [2], [4]]
    assert batcher._executor is None


def test_auto_decides_on_the_fixed_cost_of_a_call_measured_at_load():
    def heavy(rows: list[dict]) -> None:  # 3 ms of CPU per call whatever its rows
        started = time.thread_time()
        while time.thread_time() - started < 0.003:
            pass

    cost = CallCost.measure(heavy, {"x": 1.0})
    assert cost.fixed_ms >= 1.0
    assert batching_decision(BatchingConfig(), cost)[0] is True
    assert batching_decision(BatchingConfig(enabled=False), cost)[0] is False
    assert batching_decision(BatchingConfig(), None) == (False, "auto: call cost not measured")
    assert ServedModelConfig.model_validate({"batching": {"enabled": "auto"}}).batching == \
        BatchingConfig()
    with pytest.raises(ValueError):
        ServedModelConfig.model_validate({"batching": {"max_batch_size": 0}})


def test_batching_off_predicts_inline_as_before(demo_models):
    model = LoadedModel(get_model("diabetes"))
    model.warm()
    model.configure_batching(BatchingConfig(enabled=False))
    assert model.batcher is None
    rows = model.entry.reference()[model.card.feature_names].head(3).to_dict("records")
    threads: list[int] = []
    plain = model.predict

    def spy(rows: list[dict], matrix: Any = None) -> Prediction:
        threads.append(threading.get_ident())
        return plain(rows, matrix)

    model.predict = spy  # type: ignore[method-assign]

    async def call() -> tuple[Prediction, int]:
        return await model.predict_async(rows), threading.get_ident()

    answer, loop_thread = asyncio.run(call())
    assert answer == plain(rows) and threads == [loop_thread]
    info = model.batching_info()
    assert info["enabled"] is False and info["reason"] == "off in the serving configuration"
    assert "stats" not in info and info["call_cpu_ms"]["one_row"] > 0


# -- the gateway under concurrent requests ---------------------------------------------------

CLASSIFIER, REGRESSOR = "breast-cancer", "diabetes"
ON = {"enabled": True, "max_batch_size": 16, "max_wait_ms": 1.0}


def _rows(name: str, n: int, offset: int) -> list[dict]:
    entry = get_model(name)
    ref = entry.reference()[entry.card.feature_names]
    return ref.iloc[[(offset + i) % len(ref) for i in range(n)]].to_dict("records")


def _v2_body(rows: list[dict], names: list[str]) -> dict:
    data = [row[n] for row in rows for n in names]
    return {"inputs": [{"name": "x", "shape": [len(rows), len(names)], "datatype": "FP64",
                        "data": data}]}


def test_concurrent_requests_each_get_their_own_rows_answers_and_ids(tmp_path, demo_models):
    sizes = [1, 5, 2, 17, 1, 3, 8, 1, 12, 4, 1, 30, 2, 6, 1, 9] * 2
    serving = {"models": {CLASSIFIER: {"batching": ON}, REGRESSOR: {"batching": ON}}}
    with make_client(tmp_path, serving) as client:
        core = bound_context().core
        classifier = core.router.route(CLASSIFIER).model
        regressor = core.router.route(REGRESSOR).model
        assert classifier.batcher is not None and regressor.batcher is not None
        names = regressor.card.feature_names
        bodies = [_rows(CLASSIFIER if i % 3 else REGRESSOR, n, offset=7 * i)
                  for i, n in enumerate(sizes)]

        async def burst() -> list[httpx.Response]:
            from service.api import app

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await asyncio.gather(*(
                    http.post("/predict", json={"model": CLASSIFIER, "inputs": rows})
                    if i % 3 else
                    http.post(f"/v2/models/{REGRESSOR}/infer", json=_v2_body(rows, names))
                    for i, rows in enumerate(bodies)))

        responses = client.portal.call(burst)
        assert [r.status_code for r in responses] == [200] * len(sizes)
        served = client.get(f"/models/{CLASSIFIER}").json()["serving"]["batching"]
    store = open_store(str(tmp_path / "data" / "predictions.sqlite3"))
    logged = {r.id: r for r in store.read_after(0, 10_000)}
    store.close()
    for i, (rows, response) in enumerate(zip(bodies, responses, strict=True)):
        body = response.json()
        if i % 3:
            expected = classifier.predict(rows)
            ids, values = body["ids"], body["predictions"]
            assert body["probabilities"] == [pytest.approx(p) for p in expected.probabilities]
        else:
            expected = regressor.predict(rows)
            outputs = {o["name"]: o["data"] for o in body["outputs"]}
            ids, values = outputs["prediction_id"], outputs["predict"]
        assert values == pytest.approx(expected.values)
        assert len(ids) == len(rows) == len(set(ids))
        records = [logged[i] for i in ids]  # every row logged under its own id, in order
        assert [r.features for r in records] == rows
        assert [r.prediction for r in records] == pytest.approx(expected.values)
    assert len(logged) == sum(sizes)
    stats = classifier.batcher.stats
    assert stats.calls < stats.requests  # concurrent requests shared calls
    assert stats.largest <= max(16, max(sizes))
    assert served[classifier.version]["enabled"] is True
    assert served[classifier.version]["stats"]["requests"] == stats.requests


def test_a_model_error_fails_only_its_own_request(tmp_path, demo_models):
    serving = {"models": {REGRESSOR: {"batching": ON}}}
    with make_client(tmp_path, serving) as client:
        model = bound_context().core.router.route(REGRESSOR).model
        assert model.batcher is not None
        plain = model.predict
        poison = 48.123456  # in range, and no reference row's age

        def fragile(rows: list[dict]) -> Prediction:
            if any(row["age"] == poison for row in rows):
                raise RuntimeError("the model crashed")
            return plain(rows)

        model.batcher._call = fragile  # the batcher's view of the model
        bodies = [_rows(REGRESSOR, 3, offset=i) for i in range(12)]
        bodies[5][1]["age"] = poison

        async def burst() -> list[httpx.Response]:
            from service.api import app

            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await asyncio.gather(*(
                    http.post("/predict", json={"model": REGRESSOR, "inputs": rows})
                    for rows in bodies))

        responses = client.portal.call(burst)
    codes = [r.status_code for r in responses]
    assert codes == [200] * 5 + [500] + [200] * 6
    assert responses[5].json()["error"]["type"] == "model_error"
    assert model.batcher.stats.retried >= 1


def test_a_routing_change_reconfigures_batching_live(demo_models):
    from service.routing import Router
    from service.routing_watch import registry_by_name

    router = Router(seed=0)
    registry = registry_by_name()
    router.refresh(1, {REGRESSOR: ServedModelConfig(batching=BatchingConfig(enabled=True))},
                   registry)
    model = router.route(REGRESSOR).model
    first = model.batcher
    assert first is not None and first.max_batch_size == 64 and first.max_wait_ms == 2.0
    on = BatchingConfig(enabled=True, max_batch_size=8, max_wait_ms=0)
    router.refresh(2, {REGRESSOR: ServedModelConfig(batching=on)}, registry)
    assert router.route(REGRESSOR).model is model  # the same loaded version, re-batched
    assert model.batcher is not first and model.batcher.max_batch_size == 8
    assert router.models[REGRESSOR].describe()["batching"][model.version]["setting"] is True
    router.refresh(3, {}, registry)  # no batching settings: auto, as the measured cost says
    info = router.models[REGRESSOR].describe()["batching"][model.version]
    assert info["setting"] == "auto" and info["reason"].startswith("auto: fixed cost")
    assert (model.batcher is not None) is info["enabled"]
    off = ServedModelConfig(batching=BatchingConfig(enabled=False))
    router.refresh(4, {REGRESSOR: off}, registry)
    assert model.batcher is None
