"""A real ``bentoml serve`` of the gateway, shared by the end-to-end tests of a session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from loadtests.harness import (  # noqa: F401 - re-exported to the e2e tests
    BENTOML,
    ROOT,
    Server,
    free_port,
    private_bentoml_home,
    start_gateway,
    start_gateway_retrying,
    stop_gateway,
)
from tests.webhooks.webhook_helpers import SECRET, Receiver


def write_serving(data_dir: Path, receiver: Receiver) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    serving = {"webhooks": [{"url": receiver.url, "secret": SECRET}]}
    (data_dir / "driftgate.yaml").write_text(yaml.safe_dump(serving))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """A retraining pipeline's webhook endpoint that verifies every signature."""
    server = Receiver(SECRET).start()
    yield server
    server.stop()


FAST_MONITOR = {"DRIFTGATE_CHECKPOINT_EVERY_SECONDS": "1",
                "DRIFTGATE_WEBHOOK_BACKOFF_SECONDS": "0.5"}


@pytest.fixture(scope="session")
def gateway(demo_models, receiver, tmp_path_factory) -> Iterator[Server]:
    """The shared gateway: default settings, webhooks to ``receiver`` (the direct path)."""
    data_dir = tmp_path_factory.mktemp("e2e")
    write_serving(data_dir, receiver)
    server = start_gateway_retrying(data_dir, FAST_MONITOR)
    yield server
    stop_gateway(server)


@pytest.fixture(scope="session")
def alerting_receiver() -> Iterator[Receiver]:
    """The retraining endpoint of ``alerting_gateway`` (its own: tests count deliveries)."""
    server = Receiver(SECRET).start()
    yield server
    server.stop()


@dataclass
class SecuredGateway:
    """A gateway with API keys: the server, a key per scope (and some failure cases), and
    the file holding the alerts key that Alertmanager sends."""

    server: Server
    keys: dict[str, str]
    alerts_key_file: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def headers(self, scope: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[scope]}"}


def issue_e2e_keys(data_dir: Path) -> dict[str, str]:
    """Keys in the gateway's store before it starts: one per scope, a predict key limited to
    breast-cancer (``predict:breast-cancer``), and ``user`` (predict, feedback, read)."""
    from service.auth.keys import SCOPES, new_key
    from service.store.factory import open_store

    store = open_store(data_dir / "predictions.sqlite3")
    keys: dict[str, str] = {}
    wanted = [(s, [s], None) for s in SCOPES] + [
        ("predict:breast-cancer", ["predict"], ["breast-cancer"]),
        ("user", ["predict", "feedback", "read"], None)]
    try:
        for label, scopes, models in wanted:
            token, row = new_key(scopes, models=models, expires_at=None, name=label,
                                 actor="e2e", now=time.time())
            store.key_insert(row)
            keys[label] = token
    finally:
        store.close()
    return keys


@pytest.fixture(scope="session")
def alerting_gateway(demo_models, alerting_receiver, tmp_path_factory) -> Iterator[SecuredGateway]:
    """A gateway with API keys (required), where only Alertmanager requests retraining (no
    direct path)."""
    data_dir = tmp_path_factory.mktemp("alerting")
    write_serving(data_dir, alerting_receiver)
    keys = issue_e2e_keys(data_dir)
    key_file = data_dir / "driftgate-alerts.key"
    key_file.write_text(keys["alerts"] + "\n")
    key_file.chmod(0o600)
    server = start_gateway_retrying(
        data_dir, {**FAST_MONITOR, "DRIFTGATE_RETRAIN_FROM_EVENTS": "false",
                   "DRIFTGATE_REQUIRE_AUTH": "true"}
    )
    yield SecuredGateway(server, keys, key_file)
    stop_gateway(server)


@pytest.fixture(scope="session")
def observability(alerting_gateway, tmp_path_factory):
    """Real Prometheus (shipped rules) and Alertmanager watching ``alerting_gateway``,
    Alertmanager sending its alerts key."""
    from tests.e2e.observability import start_observability

    obs = start_observability(tmp_path_factory.mktemp("prom"), alerting_gateway.port,
                              alerting_gateway.alerts_key_file)
    yield obs
    obs.stop()
