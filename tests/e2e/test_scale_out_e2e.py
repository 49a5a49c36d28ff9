"""Scale-out on PostgreSQL: three gateway replicas without monitors, two monitors on their
own (one active, one hot standby). Under continuous load with drift injected the active
monitor is killed with SIGKILL: the standby takes over within 10 s, the drift is detected
once, one retrain webhook is sent for the episode and every record is processed once."""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from loadtests.harness import start_monitor, stop_monitor, wait_ready
from monitoring import MonitorConfig
from service.monitor_runner import MonitorRunner
from service.store.factory import open_store
from tests.e2e.conftest import Server, start_gateway_retrying, stop_gateway, write_serving
from tests.e2e.traffic import metric_value, reference_rows, shifted, wait_for
from tests.pg_fixtures import pg_database, pg_schema_url  # noqa: F401
from tests.webhooks.webhook_helpers import SECRET, Receiver

MODEL, FEATURE = "diabetes", "bmi"
FAST_LEASE = {"DRIFTGATE_MONITOR_LEASE_SECONDS": "3", "DRIFTGATE_MONITOR_LEASE_POLL_SECONDS": "0.5",
              "DRIFTGATE_CHECKPOINT_EVERY_SECONDS": "1", "DRIFTGATE_MONITOR_POLL_SECONDS": "0.1",
              "DRIFTGATE_WEBHOOK_BACKOFF_SECONDS": "0.5"}


def _status(server: Server) -> dict:
    try:
        return httpx.get(f"{server.url}/status", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}


class Load:
    """One client sending 4 rows per request round-robin to the gateways, ~25 requests/s;
    ``drifted`` switches the rows to ``FEATURE`` shifted by 2 sd."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.acked: list[str] = []
        self.drifted = False
        self.stop = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        calm = reference_rows(MODEL, 400, seed=11)
        moved = shifted(reference_rows(MODEL, 400, seed=12), MODEL, FEATURE, 2.0)
        clients = [httpx.Client(base_url=u, timeout=10) for u in self.urls]
        i = 0
        while not self.stop.is_set():
            rows = (moved if self.drifted else calm)[(4 * i) % 400:(4 * i) % 400 + 4]
            response = clients[i % len(clients)].post("/predict",
                                                      json={"model": MODEL, "inputs": rows})
            if response.status_code == 200:
                self.acked.extend(response.json()["ids"])
            else:
                self.errors.append(response.text)
            i += 1
            time.sleep(0.04)
        for client in clients:
            client.close()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def receiver():
    server = Receiver(SECRET).start()
    yield server
    server.stop()


def test_standby_takes_over_from_a_killed_monitor_exactly_once(demo_models, tmp_path, receiver,
                                                               request):
    store_url = pg_schema_url(request.getfixturevalue("pg_database"))
    env = {**FAST_LEASE, "DRIFTGATE_STORE_URL": store_url}
    write_serving(tmp_path / "monitors", receiver)
    gateway_env = {**env, "DRIFTGATE_MONITOR_IN_GATEWAY": "false", "DRIFTGATE_WORKERS": "1"}
    monitors = [start_monitor(tmp_path / "monitors", env, wait=False) for _ in range(2)]
    gateways: list[Server] = []
    load = None
    try:
        with ThreadPoolExecutor(3) as pool:
            gateways = list(pool.map(lambda i: start_gateway_retrying(
                tmp_path / f"gateway-{i}", gateway_env), range(3)))
        for monitor in monitors:
            wait_ready(monitor)
        wait_for(lambda: sum(_status(m).get("active", False) for m in monitors) == 1,
                 timeout=30, what="one active monitor")
        active, standby = sorted(monitors, key=lambda m: not _status(m)["active"])
        standby_process = psutil.Process(standby.process.pid)
        active_process = psutil.Process(active.process.pid)

        cpu_before, wall_before = sum(standby_process.cpu_times()[:2]), time.monotonic()
        active_before = sum(active_process.cpu_times()[:2])
        load = Load([g.url for g in gateways]).start()
        wait_for(lambda: len(load.acked) >= 300, timeout=60, what="stationary traffic")
        load.drifted = True
        store = open_store(store_url)

        def drift_found() -> bool:
            return any(e["kind"] == "feature_drift" and e["feature"] == FEATURE
                       for e in store.read_events(MODEL))

        wait_for(drift_found, timeout=60, what="the drift event")
        standby_cpu = sum(standby_process.cpu_times()[:2]) - cpu_before
        active_cpu = sum(active_process.cpu_times()[:2]) - active_before
        standby_wall = time.monotonic() - wall_before

        killed_at = time.monotonic()
        stop_monitor(active, signal.SIGKILL)
        wait_for(lambda: _status(standby).get("active"), timeout=15, interval=0.05,
                 what="the standby's takeover")
        takeover = time.monotonic() - killed_at
        print(f"\ntakeover {takeover:.2f} s after SIGKILL (lease 3 s, poll 0.5 s); standby CPU"
              f" under load before it: {standby_cpu:.3f} s in {standby_wall:.1f} s (the active"
              f" one: {active_cpu:.3f} s); {len(load.acked)} records acknowledged by then")
        time.sleep(3)  # drifted traffic goes on under the new active monitor
        load.finish()
        assert not load.errors, load.errors[:3]
        acked = len(load.acked)

        def caught_up() -> bool:
            status = store.kv_get(f"monitor:status:{MODEL}") or {}
            seen = sum(v["records_seen"] for v in status.get("versions", {}).values())
            return seen >= acked and (store.kv_get("monitor:status") or {}).get(
                "offset") == store.high_water_offset()

        wait_for(caught_up, timeout=30, what="the new active monitor to catch up")
        wait_for(lambda: receiver.delivered, timeout=30, what="the retrain webhook")
        time.sleep(1.5)  # a duplicate request would be queued and sent by now

        # every record processed exactly once: the detectors counted each acknowledged one
        status = store.kv_get(f"monitor:status:{MODEL}")
        assert sum(v["records_seen"] for v in status["versions"].values()) == acked
        # the same events as a monitor that never stopped: nothing lost, nothing twice
        replay = MonitorRunner(store, MonitorConfig(quality_events=False), fresh=True,
                               consumer="replay", models={MODEL})
        expected = []
        while (result := replay.step()).read:
            expected.extend(e.to_row() for e in result.events)
        stored = store.read_events(MODEL, limit=10_000)
        identity = ("version", "kind", "feature", "detector", "record_id")
        assert sorted(tuple(e[k] for k in identity) for e in stored) == sorted(
            tuple(e[k] for k in identity) for e in expected)
        drift = [e for e in stored if e["kind"] == "feature_drift" and e["feature"] == FEATURE]
        assert len(drift) == 1, drift  # detected once
        # one retrain request for the episode, delivered once, correctly signed
        assert receiver.bad_signatures == 0
        assert len(receiver.ids()) == 1 and set(receiver.ids().values()) == {1}
        assert receiver.delivered[0]["payload"]["model"] == MODEL
        # exactly one process exports the monitor's drift state; the gateways do not
        exporters = [s.url for s in [*gateways, standby] if (v := metric_value(
            s.url, "driftgate_drift_active", {"model": MODEL, "feature": FEATURE})) is not None
            and not math.isnan(v)]
        assert exporters == [standby.url]

        assert takeover < 10
        assert standby_cpu < 0.05 * standby_wall, (standby_cpu, standby_wall)
        store.close()
    finally:
        if load is not None:
            load.finish()
        for monitor in monitors:
            stop_monitor(monitor)
        for gateway in gateways:
            stop_gateway(gateway)
