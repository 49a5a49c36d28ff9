"""A real ``bentoml serve`` of the gateway, shared by the end-to-end tests of a session."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def alerting_gateway(demo_models, alerting_receiver, tmp_path_factory) -> Iterator[Server]:
    """A gateway where only Alertmanager requests retraining (no direct path)."""
    data_dir = tmp_path_factory.mktemp("alerting")
    write_serving(data_dir, alerting_receiver)
    server = start_gateway_retrying(
        data_dir, {**FAST_MONITOR, "DRIFTGATE_RETRAIN_FROM_EVENTS": "false"}
    )
    yield server
    stop_gateway(server)


@pytest.fixture(scope="session")
def observability(alerting_gateway, tmp_path_factory):
    """Real Prometheus (shipped rules) and Alertmanager watching ``alerting_gateway``."""
    from tests.e2e.observability import start_observability

    obs = start_observability(tmp_path_factory.mktemp("prom"), alerting_gateway.port)
    yield obs
    obs.stop()
