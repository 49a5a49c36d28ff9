"""Locust load test of a driftgate gateway: /predict, v2 infer, feedback and drift injection.

Payloads are rows of the demo models' reference samples (read from the BentoML model store, so
``BENTOML_HOME`` must name the store the gateway serves from); feedback labels are the
reference ``__label__`` of the same rows.

Users:
- ``PredictUser``: ``POST /predict`` with 1..``LOCUST_ROWS`` rows (default 1).
- ``V2User``: ``POST /v2/models/{name}/infer``, one tensor per feature.
- ``FeedbackUser`` (one per process): ``POST /feedback`` with the true labels of a share
  (``FEEDBACK_SHARE``, default 0.3) of the predictions the other users got ids for.

Environment:
- ``LOCUST_MODELS``: comma-separated models (default: breast-cancer,diabetes,diabetes-risk).
- ``LOCUST_WAIT_MAX``: seconds each user waits between requests, uniform in [0, max]
  (default 0.1; 0 = as fast as possible).
- ``DRIFT_AFTER=N``: after N prediction requests (per locust process), shift ``DRIFT_FEATURE``
  (default: each model's first numeric feature) by ``DRIFT_SIGMAS`` (default 2) reference sd.
- ``LOCUST_SHAPE=burst``: a load shape, ``BURST_BASE`` users (default 4) with a burst to
  ``BURST_PEAK`` (default 32) users for 10 s every 30 s, for ``BURST_SECONDS`` (default 90).
- Thresholds, checked when locust quits (they set the exit code): ``LOCUST_MAX_P95_MS``,
  ``LOCUST_MAX_FAIL_RATIO`` (e.g. 0.01), ``LOCUST_MIN_REQUESTS`` (default 1).

Command lines (from the repository root, gateway on :3000)::

    # steady, headless, CSV to results_stats.csv etc., fail on p95 > 200 ms or any failure
    LOCUST_MAX_P95_MS=200 LOCUST_MAX_FAIL_RATIO=0 .venv/bin/locust -f loadtests/locustfile.py \\
        --headless -u 16 -r 8 -t 60s --host http://127.0.0.1:3000 --csv results --only-summary

    # drift injection: +2 sd on `bmi` after 2,000 requests; then watch /monitoring/events
    DRIFT_AFTER=2000 DRIFT_FEATURE=bmi LOCUST_MODELS=diabetes .venv/bin/locust \\
        -f loadtests/locustfile.py --headless -u 8 -r 8 -t 120s --host http://127.0.0.1:3000

    # bursts (the shape sets users and duration)
    LOCUST_SHAPE=burst .venv/bin/locust -f loadtests/locustfile.py --headless \\
        --host http://127.0.0.1:3000

    # web UI
    .venv/bin/locust -f loadtests/locustfile.py --host http://127.0.0.1:3000
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # locust puts only this file's directory on sys.path
    sys.path.insert(0, str(ROOT))

from locust import FastHttpUser, LoadTestShape, between, events, task  # noqa: E402

from loadtests.scenario import Traffic, burst_users, env_float, threshold_failures  # noqa: E402

_TRAFFIC: Traffic | None = None


def traffic() -> Traffic:
    global _TRAFFIC
    if _TRAFFIC is None:
        _TRAFFIC = Traffic.from_env()
    return _TRAFFIC


@events.init.add_listener
def _load_pools(environment: Any, **_: Any) -> None:
    traffic()  # read the reference data before the first user spawns


@events.quitting.add_listener
def _check_thresholds(environment: Any, **_: Any) -> None:
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else None
    problems = threshold_failures(
        total.num_requests, total.fail_ratio, p95, env_float("LOCUST_MAX_P95_MS"),
        env_float("LOCUST_MAX_FAIL_RATIO"), int(os.environ.get("LOCUST_MIN_REQUESTS", "1")),
    )
    if problems:
        print("driftgate load test FAILED: " + "; ".join(problems), file=sys.stderr)
        environment.process_exit_code = 1
    elif env_float("LOCUST_MAX_P95_MS") is not None or \
            env_float("LOCUST_MAX_FAIL_RATIO") is not None:
        environment.process_exit_code = 0


# --- users ----------------------------------------------------------------------------------

WAIT_MAX = env_float("LOCUST_WAIT_MAX")
WAIT = between(0, 0.1 if WAIT_MAX is None else WAIT_MAX)


class PredictUser(FastHttpUser):
    """BentoML-native JSON predictions."""

    weight = 2
    wait_time = WAIT

    @task
    def predict(self) -> None:
        t = traffic()
        pool, rows, labels = t.payload()
        with self.client.post("/predict", json={"model": pool.name, "inputs": rows},
                              name="/predict", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            ids = response.json().get("ids", [])
            if len(ids) != len(rows):
                response.failure(f"{len(ids)} ids for {len(rows)} rows")
                return
            t.remember(ids, labels)


class V2User(FastHttpUser):
    """Open Inference Protocol v2 REST, one tensor per feature."""

    weight = 1
    wait_time = WAIT

    @task
    def infer(self) -> None:
        t = traffic()
        pool, rows, labels = t.payload()
        with self.client.post(f"/v2/models/{pool.name}/infer", json=pool.v2_body(rows),
                              name="/v2/models/[name]/infer", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            outputs = {o["name"]: o for o in response.json().get("outputs", [])}
            ids = outputs.get("prediction_id", {}).get("data", [])
            if len(ids) != len(rows):
                response.failure(f"{len(ids)} prediction ids for {len(rows)} rows")
                return
            t.remember(ids, labels)


class FeedbackUser(FastHttpUser):
    """Ground-truth labels for a share of the predictions made so far."""

    fixed_count = 1
    wait_time = between(0.2, 0.5)

    @task
    def feedback(self) -> None:
        pending = traffic().pending
        items = [
            {"id": pid, "label": label}
            for pid, label in (pending.popleft() for _ in range(min(len(pending), 200)))
        ]
        if not items:
            return
        with self.client.post("/feedback", json={"items": items}, name="/feedback",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif response.json().get("unknown"):
                response.failure(f"unknown ids: {response.json()['unknown'][:5]}")


# --- optional load shape --------------------------------------------------------------------


if os.environ.get("LOCUST_SHAPE") == "burst":

    class BurstShape(LoadTestShape):
        """Steady ``BURST_BASE`` users with bursts to ``BURST_PEAK``."""

        base = int(os.environ.get("BURST_BASE", "4"))
        peak = int(os.environ.get("BURST_PEAK", "32"))
        seconds = float(os.environ.get("BURST_SECONDS", "90"))

        def tick(self) -> tuple[int, float] | None:
            run_time = self.get_run_time()
            if run_time >= self.seconds:
                return None
            return burst_users(run_time, self.base, self.peak), float(self.peak)
