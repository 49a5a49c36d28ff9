"""Automated rollouts on a real ``bentoml serve`` gateway under load from a client that
checks every answer: a good version is promoted by itself, a version answering a constant
class is rolled back by itself within one evaluation interval; no request fails. Every
decision is in the routing history, the event table, ``/metrics`` and a signed webhook."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from loadtests.routing_changes import LoadClient
from service.rollout import MIN_LOOK_REQUESTS
from tests.e2e.conftest import FAST_MONITOR, Server, start_gateway_retrying, stop_gateway
from tests.e2e.traffic import wait_for
from tests.service.live_helpers import fresh_name
from tests.service.rollout_helpers import register_classifier, register_constant
from tests.webhooks.webhook_helpers import SECRET, Receiver

EVAL_SECONDS = 0.5
# alpha: a good version is rolled back by chance in at most alpha of its rollouts (0.05 by
# default); 0.001 keeps this test's chance failures rare while a constant class still
# fails its first look. latency_slack_ms: a loaded 2-core test machine's p99 jitter
PLAN = {"steps": [20, 50, 100], "step_seconds": 2, "min_requests": 30, "alpha": 0.001,
        "latency_slack_ms": 100}


@dataclass
class Setup:
    server: Server
    receiver: Receiver
    model: str
    good: str
    bad: str
    base: str
    rows: list[dict]


@pytest.fixture(scope="module")
def setup(demo_models, tmp_path_factory) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp("rollout")
    name = fresh_name("e2e-ro")
    base = register_classifier(name)
    # a good version answers as the base does: the load cycles a fixed set of reference rows,
    # so a version that answers a few of them differently differs systematically and its
    # answers gate rolls it back (by design), sooner or later depending on the sampling
    good = register_classifier(name).version
    bad = register_constant(name).version
    receiver = Receiver(SECRET).start()
    (data_dir / "driftgate.yaml").write_text(yaml.safe_dump({
        "models": {name: {"default": base.version}},
        "webhooks": [{"url": receiver.url, "secret": SECRET}]}))
    server = start_gateway_retrying(data_dir, {
        **FAST_MONITOR, "DRIFTGATE_ROLLOUT_EVAL_SECONDS": str(EVAL_SECONDS),
        "DRIFTGATE_ROUTING_POLL_SECONDS": "0.1"})
    rows = base.reference()[base.card.feature_names].to_dict("records")
    setup = Setup(server, receiver, name, good, bad, base.version, rows)
    try:
        yield setup
    finally:
        stop_gateway(setup.server)  # a test may have restarted it: stop the one running now
        receiver.stop()


def _run(setup: Setup, version: str, until: str, timeout: float = 90.0) -> dict:
    url = f"{setup.server.url}/models/{setup.model}/rollouts"
    started = httpx.post(url, json={"version": version, **PLAN}, timeout=30)
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]

    def finished() -> dict | None:
        doc = httpx.get(f"{url}/{rollout_id}", timeout=30).json()
        return doc if doc["status"] != "running" else None

    doc = wait_for(finished, timeout=timeout)
    assert doc["status"] == until, doc
    return doc


def test_good_promoted_bad_rolled_back_under_load(setup: Setup) -> None:
    client = LoadClient([setup.server.url], setup.model, setup.rows, threads=3,
                        pause=0.01).start()
    try:
        promoted = _run(setup, setup.good, "promoted")
        rolled_back = _run(setup, setup.bad, "rolled_back")
    finally:
        answers = client.stop()
    assert client.failures() == []  # zero non-2xx answers (the bad version answers 200)
    served = {v: sum(a.version == v for a in answers) for v in (setup.good, setup.bad)}
    assert served[setup.good] > 0 and served[setup.bad] > 0
    assert rolled_back["decision"] == "rolled back: gate answers failed", rolled_back["gates"]
    # the routing: the good version serves by default, the bad one no longer at all
    routing = httpx.get(f"{setup.server.url}/models/{setup.model}/routing", timeout=30).json()
    assert routing["routing"]["default"] == setup.good and routing["routing"]["canary"] is None
    detail = httpx.get(f"{setup.server.url}/models/{setup.model}", timeout=30).json()
    lineage = {v["version"]: v["lineage"]["promotions"] for v in detail["versions"]}
    assert [p["rollout"] for p in lineage[setup.good]] == [promoted["id"]]
    assert lineage[setup.bad] == []
    history = httpx.get(f"{setup.server.url}/models/{setup.model}/routing/history",
                        timeout=30).json()["history"]
    actors = [h["actor"] for h in history if h["actor"].startswith("rollout:")]
    assert actors.count(f"rollout:{promoted['id']}") == 3  # 20 %, 50 %, promote
    assert actors.count(f"rollout:{rolled_back['id']}") == 2  # 20 %, canary off
    events = httpx.get(f"{setup.server.url}/monitoring/events",
                       params={"model": setup.model}, timeout=30).json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("rollout_step") == 3
    assert kinds.count("rollout_promoted") == 1 and kinds.count("rollout_rolled_back") == 1
    back = next(e for e in events if e["kind"] == "rollout_rolled_back")
    assert back["details"]["rollout"] == rolled_back["id"]
    bad_times = sorted(a.t for a in answers if a.version == setup.bad)
    first_look_at = bad_times[MIN_LOOK_REQUESTS - 1]
    answered_after = [t for t in bad_times if t > first_look_at]
    print(f"\nbad version answered {served[setup.bad]} requests before its rollback "
          f"({len(answered_after)} after its first full look); good: {served[setup.good]}")
    # the look that sees 20 canary answers runs within one interval; the routing change
    # then reaches the workers within a poll; allow the monitor's and the poll's lag
    assert bad_times[-1] - first_look_at <= EVAL_SECONDS + 1.5
    # metrics and the signed webhooks
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(
            httpx.get(f"{setup.server.url}/metrics", timeout=30).text)
        for s in family.samples if s.name.startswith("driftgate_rollout_")
    }
    bad = (("model", setup.model), ("version", setup.bad))
    assert samples[("driftgate_rollout_gate", tuple(sorted((*bad, ("gate", "answers")))))] == 0
    assert samples[("driftgate_rollout_weight", bad)] == 0
    good = (("model", setup.model), ("version", setup.good))
    assert samples[("driftgate_rollout_gate", tuple(sorted((*good, ("gate", "answers")))))] == 1

    def delivered() -> list[dict] | None:
        found = [r["payload"] for r in setup.receiver.delivered
                 if r["payload"].get("type") == "driftgate.rollout_finished"]
        return found if len(found) == 2 else None

    finished = wait_for(delivered, timeout=30)
    assert {(p["version"], p["status"]) for p in finished} == {
        (setup.good, "promoted"), (setup.bad, "rolled_back")}
    assert setup.receiver.bad_signatures == 0


def test_rollout_resumes_after_a_restart(setup: Setup) -> None:
    """Stop the gateway (and its monitor) mid-rollout, start it again on the same store: the
    same rollout continues where it was and promotes."""
    url = f"{setup.server.url}/models/{setup.model}/rollouts"
    started = httpx.post(url, json={"version": setup.base, **PLAN, "step_seconds": 4},
                         timeout=30)
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    client = LoadClient([setup.server.url], setup.model, setup.rows, threads=3, pause=0.01)
    client.start()
    try:
        wait_for(lambda: httpx.get(f"{url}/{rollout_id}", timeout=30).json()["gates"],
                 timeout=60, what="a first look")
    finally:
        client.stop()
    assert httpx.get(f"{url}/{rollout_id}", timeout=30).json()["status"] == "running"
    assert client.failures() == []
    stop_gateway(setup.server)
    setup.server = start_gateway_retrying(setup.server.data_dir, {
        **FAST_MONITOR, "DRIFTGATE_ROLLOUT_EVAL_SECONDS": str(EVAL_SECONDS)})
    url = f"{setup.server.url}/models/{setup.model}/rollouts"
    client = LoadClient([setup.server.url], setup.model, setup.rows, threads=3, pause=0.01)
    client.start()
    try:
        doc = wait_for(lambda: (lambda d: d if d["status"] != "running" else None)(
            httpx.get(f"{url}/{rollout_id}", timeout=30).json()), timeout=90)
    finally:
        client.stop()
    assert doc["status"] == "promoted" and doc["created_at"] == started.json()["created_at"]
    assert client.failures() == []
    routing = httpx.get(f"{setup.server.url}/models/{setup.model}/routing", timeout=30).json()
    assert routing["routing"]["default"] == setup.base
    listed = httpx.get(url, timeout=30).json()["rollouts"]
    assert [r["id"] for r in listed if r["version"] == setup.base] == [rollout_id]
