"""Scale-out benchmark on PostgreSQL: monitor throughput with 1, 2 and 4 partitions, and the
time a standby needs to take over from a killed monitor.

    python -m loadtests.scale_out [--records 40000] [--partitions 1,2,4] [--kills 10]
                                  [--postgres ADMIN_DSN]

Throughput: a throwaway database gets a warm-up of 50 records for each of 4 models (the
demo models and one more); for each partition count P, P ``driftgate monitor run``
processes start (the models spread evenly, one lease each), calibrate on the warm-up and
catch up; then ``--records`` records (spread over the 4 models) are committed in ONE
transaction and the clock runs from that commit until every partition reports no lag.

Takeover: two monitors with the default lease (``DRIFTGATE_MONITOR_LEASE_SECONDS``=5,
``..._POLL_SECONDS``=1); the active one is killed with SIGKILL, the time until the other
reports itself active is taken, a fresh standby is started; ``--kills`` times. Prints the
median and the maximum.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from loadtests.bench import DEFAULT_PG, create_pg_database, drop_pg_database
from loadtests.harness import Server, fresh_name, register_version, start_monitor, stop_monitor
from models.demo import register_demo_models
from models.registry import get_model
from service.partitions import Partitioning
from service.store.factory import open_store
from service.store.records import PredictionRecord

BENCH_ENV = {"DRIFTGATE_CHECKPOINT_EVERY_SECONDS": "0.2", "DRIFTGATE_MONITOR_POLL_SECONDS": "0.05",
             "DRIFTGATE_RETRAIN_FROM_EVENTS": "false"}


def records_for(models: list[str], n: int, seed: int) -> list[PredictionRecord]:
    """``n`` records spread evenly over ``models``, drawn from their reference samples."""
    out: list[PredictionRecord] = []
    for i, model in enumerate(models):
        entry = get_model(model)
        count = n // len(models) + (1 if i < n % len(models) else 0)
        ref = entry.reference().sample(count, replace=True, random_state=seed + i)
        rows = ref[entry.card.feature_names].to_dict("records")
        out += [PredictionRecord(model=model, version=entry.version, features=row,
                                 prediction=pred)
                for row, pred in zip(rows, ref["__prediction__"].tolist(), strict=True)]
    return out


def _caught_up(store, partitioning: Partitioning, since: float) -> bool:
    for partition in range(partitioning.count):
        status = store.kv_get(partitioning.status_key(partition)) or {}
        if status.get("updated_at", 0) <= since or status.get("lag_records", 1):
            return False
    return True


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def throughput(url: str, models: list[str], partitions: int, records: int,
               workdir: Path) -> float:
    """Records per second of ``partitions`` monitor processes catching up ``records``."""
    partitioning = Partitioning(partitions, {m: i % partitions for i, m in enumerate(models)})
    env = {**BENCH_ENV, "DRIFTGATE_STORE_URL": url,
           "DRIFTGATE_MONITOR_PARTITIONS": str(partitions),
           "DRIFTGATE_MONITOR_PARTITION_MAP": json.dumps(dict(partitioning.assignment))}
    store = open_store(url)
    monitors = [start_monitor(workdir / f"p{partitions}", env, wait=False)
                for _ in range(partitions)]
    try:
        # warm: every process up and holding its one partition (balanced), detectors calibrated
        _wait(lambda: [_held(m) for m in monitors] == [1] * partitions, 600, "one each")
        balanced = time.time()
        _wait(lambda: _caught_up(store, partitioning, balanced), 600, "warm-up")
        batch = records_for(models, records, seed=partitions)
        store.append(batch)  # one transaction: every record visible at once
        committed = time.time()
        _wait(lambda: _caught_up(store, partitioning, committed), 1800, "catch-up")
        # the status is published at each checkpoint: its time bounds the end from above
        ends = [store.kv_get(partitioning.status_key(p))["updated_at"]
                for p in range(partitions)]
        return records / (max(ends) - committed)
    finally:
        for monitor in monitors:
            stop_monitor(monitor)
        store.close()


def _active(monitors: list[Server]) -> list[Server]:
    found = []
    for monitor in monitors:
        try:
            if httpx.get(f"{monitor.url}/status", timeout=1).json().get("active"):
                found.append(monitor)
        except (httpx.HTTPError, ValueError):
            pass
    return found


def takeovers(url: str, kills: int, workdir: Path) -> list[float]:
    """Seconds from SIGKILL of the active monitor to the standby being active."""
    env = {"DRIFTGATE_STORE_URL": url}
    monitors = [start_monitor(workdir / "takeover", env) for _ in range(2)]
    times: list[float] = []
    try:
        for _ in range(kills):
            _wait(lambda ms=monitors: len(_active(ms)) == 1, 60, "one active monitor")
            for monitor in monitors:  # the standby must be up, not starting
                _wait(lambda m=monitor: _ready(m), 120, "standby ready")
            (victim,) = _active(monitors)
            survivor = next(m for m in monitors if m is not victim)
            killed = time.monotonic()
            stop_monitor(victim, signal.SIGKILL)
            _wait(lambda s=survivor: _active([s]) == [s], 60, "takeover")
            times.append(time.monotonic() - killed)
            print(f"  takeover {len(times)}: {times[-1]:.2f} s", flush=True)
            monitors = [survivor, start_monitor(workdir / "takeover", env)]
    finally:
        for monitor in monitors:
            stop_monitor(monitor)
    return times


def _held(monitor: Server) -> int:
    try:
        return len(httpx.get(f"{monitor.url}/status", timeout=1).json()["held"])
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


def _ready(monitor: Server) -> bool:
    try:
        return httpx.get(f"{monitor.url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.scale_out")
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--partitions", default="1,2,4")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--postgres", default=DEFAULT_PG, metavar="ADMIN_DSN",
                        help="a throwaway database is created (and dropped) there")
    args = parser.parse_args(argv)
    register_demo_models(only_missing=True)
    extra = fresh_name("bench")
    register_version(extra)
    models = ["breast-cancer", "diabetes", "diabetes-risk", extra]
    workdir = Path(tempfile.mkdtemp(prefix="driftgate-scale-out-"))
    database, url = create_pg_database(args.postgres)
    try:
        store = open_store(url)
        store.append(records_for(models, 200, seed=0))  # warm-up: 50 per model
        store.close()
        for partitions in (int(p) for p in args.partitions.split(",")):
            rate = throughput(url, models, partitions, args.records, workdir)
            print(f"monitor throughput, {partitions} partition(s) on {partitions} process(es):"
                  f" {rate:,.0f} records/s ({args.records} records, 4 models)", flush=True)
        if args.kills:
            times = takeovers(url, args.kills, workdir)
            print(f"takeover after SIGKILL over {len(times)} kills (lease 5 s, poll 1 s): "
                  f"median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    finally:
        drop_pg_database(args.postgres, database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
