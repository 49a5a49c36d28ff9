"""A PostgreSQL outage on a real gateway: its connections terminated and new ones refused for
10 s. Every endpoint that needs the store answers 503 JSON without naming the database,
``/readyz`` says not ready, and everything recovers without a restart."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.e2e.conftest import start_gateway_retrying, stop_gateway
from tests.e2e.traffic import reference_rows
from tests.pg_fixtures import PG_ADMIN

OUTAGE_SECONDS = 10


@pytest.fixture
def outage_database() -> Iterator[str]:
    name = f"driftgate_outage_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _set_outage(name: str, down: bool) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if down else "true"}')
        if down:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", [name])


def test_store_outage_gives_503_not_ready_and_recovers(demo_models, tmp_path, outage_database):
    dsn = f"{PG_ADMIN.rsplit('/', 1)[0]}/{outage_database}"
    server = start_gateway_retrying(tmp_path, {"DRIFTGATE_STORE_URL": dsn})
    rows = reference_rows("breast-cancer", 5, seed=3)
    predict = {"model": "breast-cancer", "inputs": rows[:1]}
    secrets_in_dsn = ["127.0.0.1", "5432", outage_database, "postgres@"]
    statuses: list[tuple[str, int]] = []
    try:
        with httpx.Client(base_url=server.url, timeout=15) as http:
            ok = http.post("/predict", json=predict)
            assert ok.status_code == 200, ok.text
            (pid,) = ok.json()["ids"]

            def probe() -> dict[str, httpx.Response]:
                answers = {
                    "predict": http.post("/predict", json=predict),
                    "feedback": http.post("/feedback", json={"items": [
                        {"id": pid, "label": "benign"}]}),
                    "status": http.get("/monitoring/status"),
                    "events": http.get("/monitoring/events"),
                    "readyz": http.get("/readyz"),
                    "v2ready": http.get("/v2/health/ready"),
                }
                statuses.extend((k, r.status_code) for k, r in answers.items())
                return answers

            _set_outage(outage_database, down=True)
            down_at = time.monotonic()
            seen_down: dict[str, httpx.Response] = {}
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                for name, response in probe().items():
                    if response.status_code == 503:
                        seen_down[name] = response
                time.sleep(0.5)
            assert set(seen_down) == {"predict", "feedback", "status", "events", "readyz",
                                      "v2ready"}, statuses
            for name in ("predict", "feedback", "status", "events"):
                body = seen_down[name].json()["error"]
                assert body["type"] in {"log_unavailable", "store_unavailable"}, body
                assert not any(s in seen_down[name].text for s in secrets_in_dsn), body

            _set_outage(outage_database, down=False)
            up_at = time.monotonic()
            while time.monotonic() - up_at < 30:
                answers = probe()
                if all(r.status_code == 200 for r in answers.values()):
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"not recovered 30 s after the outage: {statuses[-6:]}")
    finally:
        stop_gateway(server)
    assert not [s for s in statuses if s[1] >= 500 and s[1] != 503], statuses
