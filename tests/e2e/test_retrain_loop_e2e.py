"""The retraining loop on real processes: a gateway (with its monitor) and a retrain worker
(``driftgate retrain worker``), labelled load, then a change of the world. From the drift
alarm to a promoted new version with no restart and no human step, zero non-2xx answers;
the promoted version's lineage names the alarm; its error on post-change traffic is lower; a
redelivered webhook does not train twice; a raising trainer and a worse model each end in an
event and leave the serving version untouched."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from standardwebhooks import Webhook

from loadtests.harness import fresh_name, metric_value
from loadtests.loop import (
    FAST_ROLLOUT,
    Answer,
    LabelledLoad,
    LoopProcesses,
    World,
    mae,
    register_world_model,
    start_loop,
    stop_loop,
)
from models.registry import list_models
from service.cli import main as cli_main
from service.config import get_settings
from service.store.factory import open_store
from service.webhooks.dispatcher import sign_headers
from tests.e2e.traffic import wait_for
from tests.webhooks.webhook_helpers import SECRET

STATIONARY_SECONDS = 6.0
AFTER_SECONDS = 4.0


@dataclass
class Loop:
    processes: LoopProcesses
    main: str
    worse: str
    raising: str
    first: dict[str, str]
    answers: list[Answer]
    failures: list[str]
    promoted: str

    @property
    def url(self) -> str:
        return self.processes.gateway.url

    def events(self, model: str) -> list[dict]:
        return httpx.get(f"{self.url}/monitoring/events", params={"model": model},
                         timeout=30).json()["events"]


def _kinds(loop: Loop, model: str, kind: str) -> list[dict]:
    return [e for e in loop.events(model) if e["kind"] == kind]


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Iterator[Loop]:
    names = {"main": fresh_name("loop"), "worse": fresh_name("loop-worse"),
             "raising": fresh_name("loop-raise")}
    first = {n: register_world_model(n).version for n in names.values()}
    processes = start_loop(tmp_path_factory.mktemp("loop"), SECRET,
                           "tests.e2e.loop_trainers:train", FAST_ROLLOUT)
    world = World(seed=3)
    load = LabelledLoad(processes.gateway.url, list(names.values()), world).start()
    setup = Loop(processes, names["main"], names["worse"], names["raising"], first, [], [], "")
    try:
        time.sleep(STATIONARY_SECONDS)
        world.changed = True

        def promoted() -> str | None:
            routing = httpx.get(f"{setup.url}/models/{setup.main}/routing",
                                timeout=30).json()["routing"]
            new = routing["default"] not in (first[setup.main], "latest")
            return routing["default"] if new and routing["canary"] is None else None

        setup.promoted = wait_for(promoted, timeout=150, interval=0.5)
        wait_for(lambda: _kinds(setup, setup.worse, "retrain_rejected"), timeout=60)
        wait_for(lambda: _kinds(setup, setup.raising, "retrain_failed"), timeout=60)
        time.sleep(AFTER_SECONDS)  # post-promotion traffic
    except BaseException:
        load.stop()
        stop_loop(processes)
        print(processes.worker_log.read_text()[-5000:])
        raise
    setup.answers = load.stop()
    setup.failures = load.failures
    try:
        yield setup
    finally:
        stop_loop(processes)


def test_drift_to_promoted_version_under_load(loop: Loop) -> None:
    assert loop.failures == []  # zero non-2xx answers, predictions and feedback
    post = [a for a in loop.answers if a.model == loop.main and a.changed]
    before = [a for a in post if a.version == loop.first[loop.main]]
    after = [a for a in post if a.version == loop.promoted]
    assert len(before) >= 50 and len(after) >= 50
    print(f"\npost-change MAE: serving version {mae(before):.3f} on {len(before)} answers, "
          f"retrained version {mae(after):.3f} on {len(after)} answers")
    assert mae(after) < 0.5 * mae(before)
    # the chain: drift alarm -> retrain request -> worker -> registered -> rollout -> promoted
    started = _kinds(loop, loop.main, "retrain_started")
    registered = _kinds(loop, loop.main, "retrain_registered")
    promoted = _kinds(loop, loop.main, "rollout_promoted")
    assert len(started) == 1 and len(registered) == 1 and len(promoted) == 1
    assert registered[0]["version"] == loop.promoted
    assert promoted[0]["details"]["rollout"] == registered[0]["details"]["rollout"]


def test_promoted_lineage_names_the_alarm(loop: Loop, monkeypatch, capsys) -> None:
    detail = httpx.get(f"{loop.url}/models/{loop.main}", timeout=30).json()
    lineage = next(v["lineage"] for v in detail["versions"] if v["version"] == loop.promoted)
    trigger = lineage["trigger"]
    assert lineage["parent_version"] == loop.first[loop.main]
    assert trigger["type"] == "retrain" and trigger["trainer"] == "tests.e2e.loop_trainers:train"
    assert trigger["webhook_id"] == trigger["event_id"]  # driftgate's webhook-id is the event id
    assert lineage["data_fingerprint"].startswith("sha256:") and lineage["row_count"] > 100
    assert lineage["code_version"].startswith("sha256:")
    assert [p["rollout"] for p in lineage["promotions"]] == [
        _kinds(loop, loop.main, "retrain_registered")[0]["details"]["rollout"]]
    drift = {e["id"]: e for e in loop.events(loop.main) if e["kind"].endswith("_drift")}
    alarm_ids = trigger["alarm"]["monitor_event_ids"]
    assert alarm_ids and set(alarm_ids) <= set(drift)
    assert trigger["alarm"]["window"]["first_prediction_id"] == min(
        (drift[i] for i in alarm_ids), key=lambda e: e["ts"])["record_id"]
    # and the same chain on the command line (in-process: the same code as the console script)
    monkeypatch.setenv("DRIFTGATE_DATA_DIR", str(loop.processes.gateway.data_dir))
    get_settings.cache_clear()
    try:
        assert cli_main(["models", "show", loop.main, "--lineage"]) == 0
    finally:
        get_settings.cache_clear()
    shown = capsys.readouterr().out
    assert shown.startswith(f"{loop.main} {loop.promoted} (serving by default)"), shown
    assert trigger["alarm"]["trigger"] in ("drift", "performance")  # concept drift may be first
    assert (f"because: {trigger['alarm']['trigger']} alarm, retrain request "
            f"{trigger['event_id']}") in shown
    assert f"event #{alarm_ids[0]} " in shown and f"parent {loop.first[loop.main]}" in shown


def test_redelivery_does_not_train_twice(loop: Loop) -> None:
    store = open_store(str(loop.processes.gateway.data_dir / "predictions.sqlite3"))
    try:
        item = next(i for i in store.outbox_list("delivered")
                    if i.payload.get("model") == loop.main
                    and i.payload["type"] == "driftgate.retrain_requested")
    finally:
        store.close()
    body = json.dumps(item.payload, separators=(",", ":"))
    headers = sign_headers(Webhook(SECRET), item.event_id, body, time.time())
    again = httpx.post(loop.processes.webhook_url, content=body.encode(),
                       headers={**headers, "content-type": "application/json"}, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text
    assert again.json()["version"] == loop.promoted
    time.sleep(1.0)
    assert len(_kinds(loop, loop.main, "retrain_started")) == 1
    labels = {"model": loop.main, "outcome": "registered"}
    assert metric_value(loop.processes.worker_url, "driftgate_retrains_total", labels) == 1.0
    assert metric_value(loop.processes.worker_url, "driftgate_retrain_requests_total",
                        {"status": "duplicate"}) >= 1.0
    forged = httpx.post(loop.processes.webhook_url, content=body.encode(),
                        headers={**headers, "webhook-id": "msg_forged"}, timeout=30)
    assert forged.status_code == 401 and forged.json()["error"]["type"] == "invalid_signature"


@pytest.mark.parametrize(("which", "kind", "outcome"), [
    ("worse", "retrain_rejected", "rejected"), ("raising", "retrain_failed", "failed")])
def test_bad_retrains_leave_serving_untouched(loop: Loop, which: str, kind: str,
                                              outcome: str) -> None:
    model = getattr(loop, which)
    event = _kinds(loop, model, kind)[0]
    if which == "worse":
        check = event["details"]["check"]
        assert check["candidate"] > check["limit"] and "worse than the current" in event[
            "details"]["reason"]
    else:
        assert event["details"]["stage"] == "trainer"
        assert "trainer broke on purpose" in event["details"]["error"]
    assert _kinds(loop, model, "retrain_registered") == []
    assert [v.version for v in list_models(model)] == [loop.first[model]]  # nothing registered
    served = {a.version for a in loop.answers if a.model == model}
    assert served == {loop.first[model]}
    history = httpx.get(f"{loop.url}/models/{model}/routing/history", timeout=30).json()
    assert history["history"] == []  # the routing was never touched
    assert metric_value(loop.processes.worker_url, "driftgate_retrains_total",
                        {"model": model, "outcome": outcome}) >= 1.0
