"""A short headless locust run against a real ``bentoml serve`` gateway, plus the pure logic
of the locustfile (drift schedule, thresholds, burst shape)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.scenario import DriftSchedule, ModelPool, burst_users, threshold_failures
from models.registry import get_model
from tests.e2e.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"


def test_locust_smoke(gateway: Server, tmp_path: Path) -> None:
    prefix = tmp_path / "smoke"
    env = {**os.environ, "LOCUST_MAX_FAIL_RATIO": "0", "LOCUST_MAX_P95_MS": "5000",
           "LOCUST_MIN_REQUESTS": "10", "LOCUST_ROWS": "3", "FEEDBACK_SHARE": "1"}
    run = subprocess.run(
        [str(LOCUST), "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
         # locust counts its run time from before the locustfile's slow imports (bentoml,
         # seconds on a busy machine): 12 s leaves several seconds of load
         "-u", "4", "-r", "4", "-t", "12s", "--host", gateway.url, "--csv", str(prefix),
         "--only-summary", "--stop-timeout", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with open(f"{prefix}_stats.csv", newline="") as fh:
        stats = {row["Name"]: row for row in csv.DictReader(fh)}
    for name in ("/predict", "/v2/models/[name]/infer", "/feedback"):
        assert name in stats, (name, sorted(stats), run.stderr[-2000:])
        assert int(stats[name]["Request Count"]) > 0, stats[name]
        assert int(stats[name]["Failure Count"]) == 0, stats[name]
    assert int(stats["Aggregated"]["Failure Count"]) == 0


def test_drift_schedule_shifts_after_n_requests() -> None:
    schedule = DriftSchedule(after=3)
    assert [schedule.next() for _ in range(5)] == [False, False, False, True, True]
    never = DriftSchedule(after=None)
    assert not any(never.next() for _ in range(100))


def test_thresholds() -> None:
    assert threshold_failures(100, 0.0, 40.0, max_p95_ms=50, max_fail_ratio=0) == []
    assert threshold_failures(100, 0.0, 40.0, None, None) == []
    assert len(threshold_failures(100, 0.02, 60.0, max_p95_ms=50, max_fail_ratio=0.01)) == 2
    assert threshold_failures(0, 0.0, None, None, None) == ["0 requests < 1"]


def test_burst_shape() -> None:
    assert [burst_users(t, 4, 32) for t in (0, 19.9, 20, 29.9, 30, 55)] == [4, 4, 32, 32, 4, 32]


def test_drifted_pool_shifts_one_feature_by_two_sd(demo_models: dict[str, str]) -> None:
    pool = ModelPool.load("diabetes", "bmi", sigmas=2.0)
    sd = float(get_model("diabetes").reference()["bmi"].std())
    assert pool.drifted[0]["bmi"] - pool.rows[0]["bmi"] == pytest.approx(2 * sd)
    assert {k for k in pool.rows[0] if pool.drifted[0][k] != pool.rows[0][k]} == {"bmi"}
    rows, labels = pool.sample(5, drift=False)
    assert len(rows) == len(labels) == 5
    body = pool.v2_body(rows)
    assert [t["name"] for t in body["inputs"]] == list(rows[0])
    assert all(t["shape"] == [5] and t["datatype"] == "FP64" for t in body["inputs"])
