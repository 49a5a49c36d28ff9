"""A bad version's automated rollout under load: how many requests it answers before the
monitor rolls it back by itself, and how many requests fail meanwhile (must be none).

    python -m loadtests.rollout_bad_version [--runs 5] [--eval-seconds 1]

Starts one real gateway (``bentoml serve``, two workers) with a classifier as the default,
keeps a checking client on it, and ``--runs`` times starts a rollout (first step 20 %) of a
version that answers one class only, waiting for its rollback. Traffic goes to 127.0.0.1
only; everything stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx
import yaml

from loadtests.routing_changes import LoadClient

PLAN = {"steps": [20, 50, 100], "step_seconds": 600, "min_requests": 500}


def rollout_until_finished(url: str, model: str, version: str, timeout: float = 120.0) -> dict:
    started = httpx.post(f"{url}/models/{model}/rollouts", json={"version": version, **PLAN},
                         timeout=30)
    started.raise_for_status()
    rollout_id = started.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = httpx.get(f"{url}/models/{model}/rollouts/{rollout_id}", timeout=30).json()
        if doc["status"] != "running":
            return doc
        time.sleep(0.2)
    raise TimeoutError(f"rollout {rollout_id} still running after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    import os
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="driftgate-rollout-bench-"))
    os.environ["BENTOML_HOME"] = str(base / "bentoml")  # a private model store, before bentoml
    from tests.e2e.conftest import start_gateway_retrying, stop_gateway
    from tests.service.live_helpers import fresh_name
    from tests.service.rollout_helpers import register_classifier, register_constant

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--eval-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    name = fresh_name("bench-rollout")
    good = register_classifier(name)
    bad = register_constant(name).version
    data_dir = base / "gateway"
    data_dir.mkdir(parents=True)
    (data_dir / "driftgate.yaml").write_text(
        yaml.safe_dump({"models": {name: {"default": good.version}}}))
    server = start_gateway_retrying(data_dir, {
        "DRIFTGATE_ROLLOUT_EVAL_SECONDS": str(args.eval_seconds),
        "DRIFTGATE_ROUTING_POLL_SECONDS": "0.1"})
    rows = good.reference()[good.card.feature_names].to_dict("records")
    counts, seconds, decisions = [], [], []
    try:
        load = LoadClient([server.url], name, rows, threads=4).start()
        try:
            for _ in range(args.runs):
                t0 = time.monotonic()
                doc = rollout_until_finished(server.url, name, bad)
                time.sleep(1.0)  # answers still in flight when the rollback landed
                counts.append(sum(a.version == bad for a in load.since(t0)))
                seconds.append(doc["finished_at"] - doc["created_at"])
                decisions.append(doc["decision"])
        finally:
            load.stop()
    finally:
        stop_gateway(server)
    print(f"bad-version rollouts: {args.runs} runs, first step 20 %, evaluation every "
          f"{args.eval_seconds:g} s, {len(load.answers)} requests during the run")
    print(f"  requests the bad version answered before its rollback: median "
          f"{statistics.median(counts):g}, max {max(counts)} ({counts})")
    print(f"  start to rollback: median {statistics.median(seconds):.2f} s, "
          f"max {max(seconds):.2f} s")
    print(f"  decisions: {sorted(set(decisions))}")
    print(f"  failed requests: {len(load.failures())}")
    return 0 if not load.failures() and all("rolled back" in d for d in decisions) else 1


if __name__ == "__main__":
    raise SystemExit(main())
