"""A real ``bentoml serve`` of the gateway, shared by the end-to-end tests of a session."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.webhooks.webhook_helpers import SECRET, Receiver

ROOT = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).parent / "bentoml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen
    log: Path


def private_bentoml_home(data_dir: Path) -> str:
    """A BENTOML_HOME of this server's own that shares the models and bentos.

    Every ``bentoml serve`` wipes ``$BENTOML_HOME/prometheus_multiproc_dir`` at start-up, so two
    servers on one home lose each other's metrics; the model store is shared by symlinks.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer

    shared = Path(BentoMLContainer.bentoml_home.get())
    home = data_dir / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    for name in ("models", "bentos"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        link = home / name
        if not link.exists():
            link.symlink_to(shared / name, target_is_directory=True)
    return str(home)


def start_gateway(data_dir: Path, port: int, extra_env: dict[str, str | None] | None = None,
                  timeout: float = 120.0, target: str = "service.gateway:Gateway",
                  cwd: Path = ROOT) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DRIFTGATE_DATA_DIR": str(data_dir),
           "BENTOML_HOME": private_bentoml_home(data_dir),
           "DRIFTGATE_CONFIG_FILE": str(data_dir / "driftgate.yaml"), **(extra_env or {})}
    env = {key: value for key, value in env.items() if value is not None}  # None: unset
    log = data_dir / f"bentoml-{port}.log"
    process = subprocess.Popen(
        [str(BENTOML), "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        cwd=cwd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, port, data_dir, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_gateway(Server(url, port, data_dir, process, log))
    raise RuntimeError(f"gateway not ready in {timeout}s: {log.read_text()[-3000:]}")


def stop_gateway(server: Server, sig: int = signal.SIGTERM) -> None:
    """Stop the server we started and every process under it.

    BentoML's workers run in sessions of their own, so signalling the server's process group
    does not reach them: with SIGKILL (a crash) each is killed by PID too, and after a
    SIGTERM any worker still alive when the server has exited is killed by PID.
    """
    if server.process.poll() is not None:
        return
    workers = psutil.Process(server.process.pid).children(recursive=True)
    if sig == signal.SIGKILL:
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
    os.killpg(server.process.pid, sig)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=15)
    for worker in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()


def start_gateway_retrying(data_dir: Path, extra_env: dict[str, str] | None = None,
                           attempts: int = 3) -> Server:
    """Start on a fresh free port; retry when a port race (ours or BentoML's) loses."""
    for attempt in range(attempts):
        try:
            return start_gateway(data_dir, free_port(), extra_env)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


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
