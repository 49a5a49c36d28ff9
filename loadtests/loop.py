"""The retraining loop on one machine: a gateway and a retrain worker on real processes, a
world whose inputs and labels change, labelled traffic, and the timeline of what happened.

    python -m loadtests.scenario loop        # or: python -m loadtests.loop

The world: features ``a``, ``b``, ``c`` ~ N(0, 1) and ``y = 3a + 2b - c + noise``. At the
change, ``a`` shifts by 1.5 standard deviations and the labels follow a new relation,
``y = 3a - 2b - c + 2 + noise``, so the serving model really gets worse. The drift alarm
requests a retrain; the worker trains ``models.demo:retrain`` on the labelled records since
the alarm, checks it on the most recent ones, registers it and rolls it out; the rollout
promotes it. The tests (``tests/e2e/test_retrain_loop_e2e.py``) run the same pieces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from loadtests.harness import (
    ROOT,
    Server,
    free_port,
    private_bentoml_home,
    start_gateway_retrying,
    stop_gateway,
)
from models.registry import RegisteredModel, register_model

__all__ = ["Answer", "LabelledLoad", "LoopProcesses", "World", "register_world_model",
           "start_loop", "stop_loop", "timeline"]

FEATURES = ("a", "b", "c")
NOISE = 0.5
SHIFT = 1.5
WEBHOOK_PATH = "/webhooks/driftgate"
FAST_LOOP_ENV = {
    "DRIFTGATE_CHECKPOINT_EVERY_SECONDS": "1", "DRIFTGATE_WEBHOOK_BACKOFF_SECONDS": "0.5",
    "DRIFTGATE_ROLLOUT_EVAL_SECONDS": "0.5", "DRIFTGATE_ROUTING_POLL_SECONDS": "0.1",
}  # fmt: skip
FAST_ROLLOUT = ["--steps", "20,50,100", "--step-seconds", "2", "--min-requests", "30",
                "--alpha", "0.001", "--min-labels", "150"]


@dataclass
class World:
    """Rows and true labels before and after the change (seeded)."""

    seed: int = 0
    changed: bool = False

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()

    def frame(self, n: int, changed: bool) -> tuple[pd.DataFrame, pd.Series]:
        with self._lock:
            x = self._rng.normal(size=(n, 3))
            noise = self._rng.normal(scale=NOISE, size=n)
        if changed:
            x[:, 0] += SHIFT
        frame = pd.DataFrame(x, columns=list(FEATURES))
        return frame, pd.Series(self.truth(frame, changed) + noise, name="y")

    @staticmethod
    def truth(frame: pd.DataFrame, changed: bool) -> np.ndarray:
        a, b, c = (frame[f].to_numpy() for f in FEATURES)
        return 3 * a - 2 * b - c + 2 if changed else 3 * a + 2 * b - c

    def draw(self) -> tuple[dict[str, float], float, bool]:
        changed = self.changed
        frame, y = self.frame(1, changed)
        return {f: float(frame[f].iloc[0]) for f in FEATURES}, float(y.iloc[0]), changed


def register_world_model(name: str, seed: int = 0) -> RegisteredModel:
    """The first version: ridge regression fitted on the world before the change."""
    from sklearn.linear_model import Ridge

    world = World(seed)
    X, y = world.frame(2000, False)
    ref, ref_y = world.frame(1000, False)
    model = Ridge(alpha=1.0).fit(X.to_numpy(), y)
    return register_model(name, model, X, y, reference=ref, reference_target=ref_y,
                          code_version="loop-world-1", trigger={"type": "initial"})


@dataclass(slots=True)
class Answer:
    t: float
    model: str
    status: int
    version: str | None
    prediction_id: str | None
    prediction: float | None
    label: float
    changed: bool


@dataclass
class LabelledLoad:
    """Threads sending one row per request and, in batches, its true label as feedback."""

    url: str
    models: list[str]
    world: World
    threads: int = 3
    pause: float = 0.01
    feedback_every: int = 10
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.threads)]

    def start(self) -> LabelledLoad:
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return list(self.answers)

    def _run(self, index: int) -> None:
        pending: list[dict[str, Any]] = []
        deadline = time.monotonic() + 900.0
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = index
            while not self._stop.is_set() and time.monotonic() < deadline:
                model = self.models[i % len(self.models)]
                i += 1
                row, label, changed = self.world.draw()
                answer = self._predict(http, model, row, label, changed)
                if answer.prediction_id is not None:
                    pending.append({"id": answer.prediction_id, "label": label})
                if len(pending) >= self.feedback_every:
                    self._feedback(http, pending)
                    pending = []
                self._stop.wait(self.pause)
            if pending:
                self._feedback(http, pending)

    def _predict(self, http: httpx.Client, model: str, row: dict[str, float], label: float,
                 changed: bool) -> Answer:
        t = time.time()
        try:
            response = http.post("/predict", json={"model": model, "inputs": [row]})
        except httpx.HTTPError as exc:
            self._fail(f"predict {model}: {type(exc).__name__}: {exc}")
            return Answer(t, model, 0, None, None, None, label, changed)
        if response.status_code != 200:
            self._fail(f"predict {model}: {response.status_code} {response.text[:200]}")
            return Answer(t, model, response.status_code, None, None, None, label, changed)
        body = response.json()
        answer = Answer(t, model, 200, body["version"], body["ids"][0],
                        float(body["predictions"][0]), label, changed)
        with self._lock:
            self.answers.append(answer)
        return answer

    def _feedback(self, http: httpx.Client, items: list[dict[str, Any]]) -> None:
        try:
            response = http.post("/feedback", json={"items": items})
        except httpx.HTTPError as exc:
            self._fail(f"feedback: {type(exc).__name__}: {exc}")
            return
        if response.status_code != 200:
            self._fail(f"feedback: {response.status_code} {response.text[:200]}")

    def _fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)


@dataclass
class LoopProcesses:
    gateway: Server
    worker: subprocess.Popen[bytes]
    worker_url: str
    worker_log: Path

    @property
    def webhook_url(self) -> str:
        return self.worker_url + WEBHOOK_PATH


def start_loop(data_dir: Path, secret: str, trainer: str, worker_args: list[str],
               gateway_env: dict[str, str] | None = None) -> LoopProcesses:
    """A gateway whose retrain webhooks go to a retrain worker, both on free ports."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}"
    serving = {"webhooks": [{"url": worker_url + WEBHOOK_PATH, "secret": secret}]}
    (data_dir / "driftgate.yaml").write_text(yaml.safe_dump(serving))
    gateway = start_gateway_retrying(data_dir, {**FAST_LOOP_ENV, **(gateway_env or {})})
    env = {**os.environ, "DRIFTGATE_DATA_DIR": str(data_dir),
           "BENTOML_HOME": private_bentoml_home(data_dir),
           "DRIFTGATE_CONFIG_FILE": str(data_dir / "driftgate.yaml"),
           "DRIFTGATE_RETRAIN_SECRET": secret, "DRIFTGATE_RETRAIN_LATENCY_SLACK_MS": "100"}
    log = data_dir / "retrain-worker.log"
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "driftgate"), "retrain", "worker", "--trainer",
         trainer, "--port", str(port), *worker_args],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes = LoopProcesses(gateway, worker, worker_url, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            stop_loop(processes)
            raise RuntimeError(f"retrain worker exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(worker_url + "/livez", timeout=1).status_code == 200:
                return processes
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop_loop(processes)
    raise RuntimeError(f"retrain worker not up: {log.read_text()[-3000:]}")


def stop_loop(processes: LoopProcesses) -> None:
    if processes.worker.poll() is None:
        processes.worker.terminate()
        try:
            processes.worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            processes.worker.kill()
            processes.worker.wait(timeout=10)
    stop_gateway(processes.gateway)


def mae(answers: list[Answer]) -> float:
    return float(np.mean([abs((a.prediction or 0.0) - a.label) for a in answers]))


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def timeline(url: str, model: str, answers: list[Answer], changed_at: float,
             deliveries: Sequence[Any] = ()) -> list[str]:
    """The story of one model, one line per step: time, what, where (prediction id).
    ``deliveries``: the model's webhook outbox items (``Store.outbox_list``)."""
    events = httpx.get(f"{url}/monitoring/events", params={"model": model, "limit": 1000},
                       timeout=30).json()["events"]
    first_changed = next((a for a in answers if a.model == model and a.changed), None)
    rows: list[tuple[float, str]] = [(changed_at, "the world changes: a +1.5 sd, new labels"
                                      + (f" (first prediction {first_changed.prediction_id})"
                                         if first_changed else ""))]
    for e in events:
        d = e.get("details") or {}
        kind = e["kind"]
        if kind in ("feature_drift", "prediction_drift", "multivariate_drift",
                    "concept_drift", "performance"):
            bound = (f" > {_num(e.get('threshold'))}" if e.get("threshold") is not None
                     else "")
            what = (f"{kind} {e.get('feature') or ''} ({e.get('detector')} "
                    f"{_num(e.get('statistic'))}{bound}) at prediction {e.get('record_id')}")
        elif kind.startswith("retrain_"):
            what = f"{kind} webhook {d.get('webhook_id')}"
            if kind == "retrain_started":
                window = (d.get("alarm") or {}).get("window") or {}
                what += (f" for request {d.get('event_id')}, window from prediction "
                         f"{window.get('first_prediction_id')}")
            if kind == "retrain_registered":
                check = d.get("check") or {}
                what += (f": version {d.get('version')} (holdout {check.get('metric')} "
                         f"{_num(check.get('candidate'))} vs {_num(check.get('current'))}), "
                         f"rollout {d.get('rollout')}")
            if kind in ("retrain_rejected", "retrain_failed"):
                what += f": {d.get('reason') or d.get('error')}"
        elif kind.startswith("rollout_"):
            gates = ", ".join(f"{g['gate']} {'pass' if g['passed'] else 'FAIL'}"
                              for g in d.get("gates") or [])
            weight = f" weight {d['weight']}" if "weight" in d else ""
            what = (f"{kind} step {d.get('step')}{weight}"
                    + (f" gates: {gates}" if gates else "")
                    + (f" decision: {d.get('decision')}" if d.get("decision") else ""))
        else:
            what = f"{kind} {e.get('feature') or ''}"
        rows.append((float(e["ts"]), what))
    for item in deliveries:
        kind = item.payload.get("type", "")
        rows.append((item.created_at, f"webhook {kind} {item.event_id} queued "
                                      f"(trigger {item.payload.get('trigger', '-')})"))
        if item.delivered_at is not None:
            rows.append((item.delivered_at, f"webhook {item.event_id} delivered to "
                                            f"{item.endpoint} after {item.attempts} attempt(s)"))
    mine = [a for a in answers if a.model == model and a.changed]
    versions = list(dict.fromkeys(a.version for a in mine))
    for version in versions:
        served = [a for a in mine if a.version == version]
        rows.append((served[0].t, f"version {version} first answers post-change traffic "
                                  f"(prediction {served[0].prediction_id}); MAE over its "
                                  f"{len(served)} post-change answers {mae(served):.3f}"))
    rows.sort()
    start = rows[0][0]
    return [f"{time.strftime('%H:%M:%S', time.gmtime(t))} +{t - start:6.1f}s  {what}"
            for t, what in rows]


def deliveries(data_dir: Path, model: str) -> list[Any]:
    """The model's webhook outbox items in the gateway's store."""
    from service.store.factory import open_store

    store = open_store(str(data_dir / "predictions.sqlite3"))
    try:
        return [i for i in store.outbox_list(limit=10_000) if i.model == model]
    finally:
        store.close()


def print_lineage(data_dir: Path, model: str) -> None:
    """``driftgate models show MODEL --lineage`` of the gateway's store."""
    from service.retrain.lineage import chain, format_chain
    from service.store.factory import open_store

    store = open_store(str(data_dir / "predictions.sqlite3"))
    try:
        print(f"\n$ driftgate models show {model} --lineage")
        print(format_chain(model, chain(store, model)))
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    """Run the whole story once and print its timeline."""
    import argparse
    import base64
    import secrets
    import tempfile

    from loadtests.harness import fresh_name

    parser = argparse.ArgumentParser(prog="python -m loadtests.scenario loop")
    parser.add_argument("--stationary-seconds", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--trainer", default="models.demo:retrain")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    model = fresh_name("loop")
    print(f"registering {model} (ridge regression on the world before the change)")
    first = register_world_model(model)
    with tempfile.TemporaryDirectory(prefix="driftgate-loop-") as tmp:
        loop = start_loop(Path(tmp), secret, args.trainer, FAST_ROLLOUT)
        print(f"gateway {loop.gateway.url}, retrain worker {loop.worker_url}, data {tmp}")
        world = World(seed=1)
        load = LabelledLoad(loop.gateway.url, [model], world).start()
        try:
            time.sleep(args.stationary_seconds)
            changed_at = time.time()
            world.changed = True
            deadline = time.monotonic() + args.timeout
            promoted = None
            while time.monotonic() < deadline and promoted is None:
                time.sleep(1.0)
                routing = httpx.get(f"{loop.gateway.url}/models/{model}/routing",
                                    timeout=30).json()["routing"]
                if routing["default"] not in (first.version, "latest") and not routing[
                        "canary"]:
                    promoted = routing["default"]
            time.sleep(5.0)  # post-promotion traffic for the error after
        finally:
            answers = load.stop()
        try:
            for line in timeline(loop.gateway.url, model, answers, changed_at,
                                 deliveries(Path(tmp), model)):
                print(line)
            post = [a for a in answers if a.changed]
            for version in dict.fromkeys(a.version for a in post):
                served = [a for a in post if a.version == version]
                print(f"post-change MAE of {version}: {mae(served):.3f} "
                      f"({len(served)} answers)")
            print(f"non-2xx answers: {len(load.failures)}")
            print_lineage(Path(tmp), model)
            if promoted is None:
                print("no promotion within the timeout")
                return 1
            return 0
        finally:
            stop_loop(loop)
            if args.keep:
                import shutil

                kept = Path(tempfile.mkdtemp(prefix="driftgate-loop-kept-"))
                shutil.copytree(tmp, kept, dirs_exist_ok=True, symlinks=True)
                print(f"kept the data directory as {kept}")


if __name__ == "__main__":
    sys.exit(main())
