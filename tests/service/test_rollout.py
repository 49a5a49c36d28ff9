"""The rollout state machine on a real SQLite store, the real registry and RoutingAdmin,
with logged traffic written as the gateway writes it and a controlled clock."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from service.config import WebhookEndpoint
from service.errors import APIError
from service.metrics import rollout_metrics
from service.rollout import RolloutPlan, Rollouts
from service.routing_state import RoutingAdmin
from service.store import Store, open_store
from service.store.records import PredictionRecord
from tests.service.live_helpers import fresh_name
from tests.service.rollout_helpers import register_classifier, register_constant

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test secret, no delivery happens
CLASSES = ["benign"] * 63 + ["malignant"] * 37


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    yield s
    s.close()


def traffic(store: Store, name: str, versions: dict[str, str], n: int, ts: float,
            answer: dict[str, object], seed: int = 0) -> None:
    """``n`` logged answers: arm -> version, routed by the routing's canary weight."""
    rng = random.Random(seed)
    spec, _ = RoutingAdmin(store, "test").current(name)
    weight = spec.canary.weight if spec.canary else 0.0
    records = []
    for i in range(n):
        arm = "canary" if rng.random() < weight else "default"
        value = answer[arm] if answer[arm] is not None else rng.choice(CLASSES)
        records.append(PredictionRecord(model=name, version=versions[arm], features={},
                                        prediction=value, arm=arm, ts=ts + i * 1e-3,
                                        latency_ms=2.0 + rng.random()))
    store.append(records)


def setup(store: Store, bad: bool = False) -> tuple[str, str, str]:
    name = fresh_name("ro")
    v1 = register_classifier(name).version
    v2 = (register_constant(name) if bad else register_classifier(name, 0.5)).version
    RoutingAdmin(store, "test").promote(name, v1)
    return name, v1, v2


def test_good_version_walks_the_steps_and_is_promoted(store: Store, demo_models) -> None:
    clock, registry = Clock(), CollectorRegistry()
    name, v1, v2 = setup(store)
    hooks = [WebhookEndpoint(url="http://127.0.0.1:9/hook", secret=SECRET)]
    rollouts = Rollouts(store, metrics=rollout_metrics(registry), webhooks=lambda: hooks,
                        clock=clock)
    row = rollouts.start(name, RolloutPlan(v2, [0.2, 0.5, 1.0], 10, 50), "cli:test")
    assert RoutingAdmin(store, "t").current(name)[0].canary.weight == 0.2
    arms = {"default": v1, "canary": v2}
    for step in range(2):
        traffic(store, name, arms, 400, clock.now + 1, {"default": None, "canary": None}, 10 + step)
        clock.now += 5
        (doc,) = rollouts.tick()
        assert doc["step"] == step and all(g["passed"] for g in doc["gates"]), doc["gates"]
        clock.now += 6
        rollouts.tick()
    final = store.rollout_get(row.id)
    assert final is not None and final.status == "promoted"
    spec, _ = RoutingAdmin(store, "t").current(name)
    assert spec.default == v2 and spec.canary is None
    history = store.routing_history(name)
    assert [(h.action, h.actor) for h in history[1:]] == [
        ("canary", f"rollout:{row.id}"), ("canary", f"rollout:{row.id}"),
        ("promote", f"rollout:{row.id}")]
    assert all(h.reason and row.id in h.reason for h in history[1:])
    kinds = [e["kind"] for e in store.read_events(name)]
    assert kinds == ["rollout_step", "rollout_step", "rollout_promoted"]
    (item,) = store.outbox_list()
    assert item.payload["type"] == "driftgate.rollout_finished"
    assert item.payload["status"] == "promoted" and item.payload["version"] == v2
    (line,) = store.kv_get(f"lineage:promotions:{name}:{v2}")
    assert line["rollout"] == row.id and line["baseline"] == v1 and line["evidence"]["gates"]
    assert registry.get_sample_value("driftgate_rollout_weight",
                                     {"model": name, "version": v2}) == 0.5
    assert registry.get_sample_value("driftgate_rollout_gate",
                                     {"model": name, "version": v2, "gate": "answers"}) == 1.0


def test_constant_class_version_is_rolled_back_at_the_first_look(store: Store,
                                                                 demo_models) -> None:
    clock, registry = Clock(), CollectorRegistry()
    name, v1, v2 = setup(store, bad=True)
    rollouts = Rollouts(store, metrics=rollout_metrics(registry), clock=clock)
    row = rollouts.start(name, RolloutPlan(v2, [0.25, 0.5], 600, 500), "cli:test")
    traffic(store, name, {"default": v1, "canary": v2}, 200, clock.now + 1,
            {"default": None, "canary": "benign"})
    clock.now += 2
    (doc,) = rollouts.tick()
    assert doc["decision"] == "rolled back: gate answers failed"
    final = store.rollout_get(row.id)
    assert final is not None and final.status == "rolled_back"
    spec, _ = RoutingAdmin(store, "t").current(name)
    assert spec.default == v1 and spec.canary is None
    last = store.routing_history(name)[-1]
    assert last.actor == f"rollout:{row.id}" and "gate answers failed" in (last.reason or "")
    event = store.read_events(name)[-1]
    assert event["kind"] == "rollout_rolled_back"
    assert any(g["gate"] == "answers" and not g["passed"] for g in event["details"]["gates"])
    assert registry.get_sample_value("driftgate_rollout_gate",
                                     {"model": name, "version": v2, "gate": "answers"}) == 0.0
    assert rollouts.tick() == []  # finished: nothing runs any more


def test_dropped_canary_answers_fail_the_share_gate(store: Store, demo_models) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    rollouts = Rollouts(store, clock=clock)
    rollouts.start(name, RolloutPlan(v2, [0.5], 600, 500), "cli:test")
    records = [PredictionRecord(model=name, version=v2 if i % 10 == 0 else v1, features={},
                                prediction=CLASSES[i % 100],
                                arm="canary" if i % 10 == 0 else "default", ts=clock.now + 1)
               for i in range(400)]  # 10 % logged on a 50 % arm: its errors are not logged
    store.append(records)
    clock.now += 2
    (doc,) = rollouts.tick()
    assert doc["decision"].startswith("rolled back: gate share")


def test_worse_labelled_accuracy_rolls_back(store: Store, demo_models) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    rollouts = Rollouts(store, clock=clock)
    rollouts.start(name, RolloutPlan(v2, [0.5], 600, 5000), "cli:test")
    rng = random.Random(5)
    records = []
    for i in range(600):
        arm = "canary" if i % 2 else "default"
        value = rng.choice(CLASSES)
        truth = value if rng.random() < (0.6 if arm == "canary" else 0.95) else (
            "benign" if value == "malignant" else "malignant")
        records.append(PredictionRecord(model=name, version=v2 if i % 2 else v1,
                                        features={}, prediction=value, arm=arm,
                                        ts=clock.now + 1))
        records[-1].label = truth
    store.append(records)
    store.add_labels([(r.id, r.label) for r in records], ts=clock.now + 2)
    clock.now += 3
    (doc,) = rollouts.tick()
    assert doc["decision"] == "rolled back: gate performance failed", doc["gates"]


def test_resumes_from_the_store_and_abort(store: Store, demo_models) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    row = Rollouts(store, clock=clock).start(name, RolloutPlan(v2, [0.1, 0.5], 1, 20),
                                             "cli:a")
    with pytest.raises(APIError) as running:
        Rollouts(store, clock=clock).start(name, RolloutPlan(v2), "cli:b")
    assert running.value.status == 409
    traffic(store, name, {"default": v1, "canary": v2}, 400, clock.now + 0.1,
            {"default": None, "canary": None})
    clock.now += 2
    (doc,) = Rollouts(store, clock=clock).tick()  # a new instance: a restarted monitor
    assert doc["step"] == 1
    done = Rollouts(store, clock=clock).abort(name, row.id, "cli:ops", "enough")
    assert done.status == "aborted" and done.doc["decision"] == "aborted by cli:ops: enough"
    assert RoutingAdmin(store, "t").current(name)[0].canary is None
    with pytest.raises(APIError) as again:
        Rollouts(store, clock=clock).abort(name, row.id, "cli:ops", None)
    assert again.value.status == 409


def test_start_refuses_client_mistakes(store: Store, demo_models) -> None:
    name, v1, _ = setup(store)
    rollouts = Rollouts(store)
    for plan, status in [(RolloutPlan("nope"), 404), (RolloutPlan(v1), 422),
                         (RolloutPlan("latest", [0.5, 0.2]), 422),
                         (RolloutPlan("latest", [1.0]), 422)]:
        with pytest.raises(APIError) as caught:
            rollouts.start(name, plan, "t")
        assert caught.value.status == status, plan
    with pytest.raises(APIError):
        rollouts.start("no-such-model", RolloutPlan("v"), "t")
    assert store.rollout_list() == []


def test_routing_changed_by_hand_ends_the_rollout(store: Store, demo_models) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    row = Rollouts(store, clock=clock).start(name, RolloutPlan(v2, [0.1, 0.5], 1, 20), "cli:a")
    RoutingAdmin(store, "cli:ops").canary(name, v2, 0.9, "by hand")
    (doc,) = Rollouts(store, clock=clock).tick()
    assert doc["decision"].startswith("aborted: the routing no longer")
    final = store.rollout_get(row.id)
    assert final is not None and final.status == "aborted"
    assert RoutingAdmin(store, "t").current(name)[0].canary.weight == 0.9  # left as set
    assert store.read_events(name)[-1]["kind"] == "rollout_rolled_back"


def test_a_start_that_died_is_given_up_after_the_grace(store: Store, demo_models) -> None:
    clock = Clock()
    name, _, v2 = setup(store)
    row = Rollouts(store, clock=clock).start(name, RolloutPlan(v2, [0.1], 1, 20), "cli:a")
    stored = store.rollout_get(row.id)
    assert stored is not None and stored.doc["routed"] is True
    store.rollout_update(row.id, "running", {**stored.doc, "routed": False})  # as mid-start
    clock.now += 30
    (doc,) = Rollouts(store, clock=clock).tick()
    assert doc["decision"] is None and store.rollout_get(row.id).status == "running"
    clock.now += 31
    (doc,) = Rollouts(store, clock=clock).tick()
    assert doc["decision"] == "aborted: its start did not complete"
    assert RoutingAdmin(store, "t").current(name)[0].canary is None


def shadow_traffic(store: Store, name: str, v1: str, v2: str, n: int, ts: float,
                   shadow_answer: object | None, seed: int = 0) -> None:
    """``n`` one-row requests answered by the default and copied to the shadow ``v2``;
    ``shadow_answer`` None: the shadow agrees with the default row by row; "fail": the
    shadow logs nothing (it failed); else: the shadow answers that constant."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        value = rng.choice(CLASSES)
        rid = f"req-{seed}-{i}"
        records.append(PredictionRecord(model=name, version=v1, features={}, prediction=value,
                                        arm="default", ts=ts + i * 1e-3, latency_ms=2.0,
                                        request_id=rid))
        if shadow_answer != "fail":
            answer = value if shadow_answer is None else shadow_answer
            records.append(PredictionRecord(model=name, version=v2, features={},
                                            prediction=answer, arm="shadow",
                                            ts=ts + i * 1e-3, latency_ms=2.5, request_id=rid))
    store.append(records)


def test_shadow_first_gates_agreement_then_walks_the_canary_steps(
    store: Store, demo_models
) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    rollouts = Rollouts(store, clock=clock)
    plan = RolloutPlan(v2, [0.5, 1.0], 10, 50, shadow_first=True)
    row = rollouts.start(name, plan, "cli:test")
    spec = RoutingAdmin(store, "t").current(name)[0]
    assert spec.shadow == v2 and spec.canary is None
    shadow_traffic(store, name, v1, v2, 300, clock.now + 1, None)
    clock.now += 11
    (doc,) = rollouts.tick()
    assert doc["phase"] == "canary" and doc["step"] == 0, doc["gates"]
    gates = doc_gates(store, row.id, "rollout_step")
    agreement = next(g for g in gates if g["gate"] == "agreement")
    assert agreement["passed"] and agreement["statistic"] == 0.0
    spec = RoutingAdmin(store, "t").current(name)[0]
    assert spec.shadow is None and spec.canary is not None and spec.canary.weight == 0.5
    traffic(store, name, {"default": v1, "canary": v2}, 300, clock.now + 1,
            {"default": None, "canary": None}, 3)
    clock.now += 11
    (doc,) = rollouts.tick()
    assert rollouts.get(name, row.id).status == "promoted", doc["gates"]


def doc_gates(store: Store, rollout_id: str, kind: str) -> list[dict]:
    """The gates of the latest event ``kind`` of a rollout."""
    events = [e for e in store.read_events(limit=100)
              if e["kind"] == kind and e["details"].get("rollout") == rollout_id]
    return events[-1]["details"]["gates"]


@pytest.mark.parametrize("shadow_answer", ["malignant", "fail"])
def test_a_disagreeing_or_failing_shadow_is_rolled_back_before_any_user_sees_it(
    store: Store, demo_models, shadow_answer: str
) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    rollouts = Rollouts(store, clock=clock)
    row = rollouts.start(name, RolloutPlan(v2, [0.5], 10, 50, shadow_first=True), "cli:test")
    shadow_traffic(store, name, v1, v2, 200, clock.now + 1, shadow_answer, 4)
    clock.now += 2
    (doc,) = rollouts.tick()
    assert rollouts.get(name, row.id).status == "rolled_back"
    assert "agreement" in doc["decision"]
    spec = RoutingAdmin(store, "t").current(name)[0]
    assert spec.shadow is None and spec.canary is None and spec.default == v1


def test_a_version_drifted_against_its_own_reference_is_not_promoted(
    store: Store, demo_models
) -> None:
    clock = Clock()
    name, v1, v2 = setup(store)
    drifted: list[str] = []
    rollouts = Rollouts(store, clock=clock,
                        drifted=lambda model, version: drifted if version == v2 else [])
    row = rollouts.start(name, RolloutPlan(v2, [0.5, 1.0], 10, 50), "cli:test")
    arms = {"default": v1, "canary": v2}
    traffic(store, name, arms, 300, clock.now + 1, {"default": None, "canary": None}, 5)
    clock.now += 2
    (doc,) = rollouts.tick()
    assert next(g for g in doc["gates"] if g["gate"] == "drift")["passed"]
    drifted.append("mean radius")
    (doc,) = rollouts.tick()
    assert rollouts.get(name, row.id).status == "rolled_back"
    assert doc["decision"] == "rolled back: gate drift failed"
    drift = next(g for g in doc["gates"] if g["gate"] == "drift")
    assert drift["detail"] == "drift active on mean radius"
    assert RoutingAdmin(store, "t").current(name)[0].canary is None
