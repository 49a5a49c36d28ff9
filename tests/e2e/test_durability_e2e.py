"""Nothing lost: every prediction that got a 2xx is in the log after the gateway is killed
with SIGKILL mid-load (default durable mode, several workers), on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from service.store.factory import open_store
from tests.e2e.conftest import start_gateway_retrying, stop_gateway
from tests.e2e.traffic import reference_rows
from tests.pg_fixtures import pg_database, pg_schema_url  # noqa: F401

CLIENTS, MIN_ACKED = 16, 400


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_acknowledged_predictions_survive_sigkill(backend, demo_models, tmp_path, request):
    env = {"DRIFTGATE_WORKERS": "3"}
    store_url = str(tmp_path / "predictions.sqlite3")
    if backend == "postgres":
        store_url = pg_schema_url(request.getfixturevalue("pg_database"))
    env["DRIFTGATE_STORE_URL"] = store_url
    server = start_gateway_retrying(tmp_path, env)
    rows = reference_rows("breast-cancer", 50, seed=5)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                try:
                    response = http.post("/predict", json={
                        "model": "breast-cancer", "inputs": rows[i % 50 : i % 50 + 2]})
                except httpx.HTTPError:
                    return  # the server died under us: this request was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acked.extend(response.json()["ids"])
                i += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < MIN_ACKED and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_gateway(server, signal.SIGKILL)  # mid-load: requests are in flight
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stop_gateway(server)
    assert len(acked) >= MIN_ACKED
    store = open_store(store_url)
    try:
        logged = {record.id for record in store.get(acked)}
    finally:
        store.close()
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log"
