"""Monitoring partitioned by model on PostgreSQL: 4 models over 2 partitions on 2 monitor
processes. Each process takes one partition; when one is killed (SIGKILL) the other takes
its partition over and all 4 models keep being monitored, every record exactly once."""

from __future__ import annotations

import json
import signal
import time

import httpx

from loadtests.harness import fresh_name, register_version, start_monitor, stop_monitor
from loadtests.harness import wait_ready as wait_monitor
from models.registry import get_model
from service.monitor_status import read_monitor_status
from service.partitions import Partitioning
from service.store.factory import open_store
from service.store.records import PredictionRecord
from tests.e2e.test_scale_out_e2e import FAST_LEASE
from tests.e2e.traffic import metric_value, wait_for
from tests.pg_fixtures import pg_database, pg_schema_url  # noqa: F401

PER_ROUND = 120


def _append(store, models: list[str], seed: int) -> None:
    records = []
    for model in models:
        entry = get_model(model)
        ref = entry.reference().sample(PER_ROUND, replace=True, random_state=seed)
        rows = ref[entry.card.feature_names].to_dict("records")
        records += [PredictionRecord(model=model, version=entry.version, features=row,
                                     prediction=pred)
                    for row, pred in zip(rows, ref["__prediction__"].tolist(), strict=True)]
    store.append(records)


def _seen(store, model: str) -> int:
    status = store.kv_get(f"monitor:status:{model}") or {}
    return sum(v["records_seen"] for v in status.get("versions", {}).values())


def _held(monitor) -> set[str]:
    try:
        return set(httpx.get(f"{monitor.url}/status", timeout=2).json()["held"])
    except (httpx.HTTPError, ValueError, KeyError):
        return set()


def test_a_killed_monitors_partition_moves_to_the_other(demo_models, tmp_path, request):
    extra = fresh_name("part")
    register_version(extra)
    models = ["breast-cancer", "diabetes", "diabetes-risk", extra]
    assignment = {"breast-cancer": 0, "diabetes": 0, "diabetes-risk": 1, extra: 1}
    store_url = pg_schema_url(request.getfixturevalue("pg_database"))
    env = {**FAST_LEASE, "DRIFTGATE_STORE_URL": store_url, "DRIFTGATE_MONITOR_PARTITIONS": "2",
           "DRIFTGATE_MONITOR_PARTITION_MAP": json.dumps(assignment)}
    store = open_store(store_url)
    monitors = [start_monitor(tmp_path, env, wait=False) for _ in range(2)]
    try:
        for monitor in monitors:
            wait_monitor(monitor)
        wait_for(lambda: [len(_held(m)) for m in monitors] == [1, 1], timeout=30,
                 what="one partition per monitor")
        _append(store, models, seed=1)
        wait_for(lambda: all(_seen(store, m) == PER_ROUND for m in models), timeout=60,
                 what="every model monitored")

        victim, survivor = monitors
        moved = _held(victim)
        killed_at = time.monotonic()
        stop_monitor(victim, signal.SIGKILL)
        wait_for(lambda: _held(survivor) == {"0", "1"}, timeout=15, interval=0.05,
                 what="the partition to move")
        print(f"\npartition {moved} moved {time.monotonic() - killed_at:.2f} s after SIGKILL")
        _append(store, models, seed=2)
        wait_for(lambda: all(_seen(store, m) == 2 * PER_ROUND for m in models), timeout=60,
                 what="every model still monitored")
        time.sleep(1.5)  # a record processed twice would show by now
        assert {m: _seen(store, m) for m in models} == dict.fromkeys(models, 2 * PER_ROUND)

        status = read_monitor_status(store, Partitioning(2, assignment))
        holder = httpx.get(f"{survivor.url}/status", timeout=2).json()["holder"]
        assert [p["holder"] for p in status["partitions"]] == [holder, holder]
        assert [p["token"] for p in status["partitions"]] != [1, 1]  # one was taken over
        for partition in ("0", "1"):
            assert metric_value(survivor.url, "driftgate_monitor_partition_active",
                                {"partition": partition}) == 1
        wait_for(lambda: read_monitor_status(store, Partitioning(2, assignment))[
            "lag_records"] == 0, timeout=10, what="no lag")
    finally:
        for monitor in monitors:
            stop_monitor(monitor)
        store.close()
