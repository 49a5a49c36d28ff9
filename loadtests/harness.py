"""Helpers the load tests and the test suite share (``loadtests/`` imports nothing from
``tests/``): a real ``bentoml serve`` of the gateway as a subprocess, throwaway PostgreSQL
schemas, small model versions under fresh names, and request helpers."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from models.registry import RegisteredModel, get_model, register_model

__all__ = ["BENTOML", "PG_ADMIN", "ROOT", "Server", "fresh_name", "free_port", "metric_value",
           "pg_schema_url", "private_bentoml_home", "reference_rows", "register_version",
           "shifted", "start_gateway", "start_gateway_retrying", "start_monitor",
           "stop_gateway", "stop_monitor"]

ROOT = Path(__file__).resolve().parents[1]
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
    import psutil  # here: the locustfile imports this module and should start fast

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


def start_monitor(data_dir: Path, extra_env: dict[str, str] | None = None,
                  timeout: float = 120.0, wait: bool = True) -> Server:
    """``driftgate monitor run`` on a free port (active or standby); with ``wait``, returns
    once ``/readyz`` answers (else call :func:`wait_ready`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "DRIFTGATE_DATA_DIR": str(data_dir),
           "DRIFTGATE_CONFIG_FILE": str(data_dir / "driftgate.yaml"), **(extra_env or {})}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = data_dir / f"monitor-{port}.log"
    process = subprocess.Popen(
        [str(BENTOML.parent / "driftgate"), "monitor", "run", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", port, data_dir, process, log)
    if wait:
        wait_ready(server, timeout)
    return server


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"process exited: {server.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.25)
    stop_monitor(server, signal.SIGKILL)
    raise RuntimeError(f"not ready in {timeout}s: {server.log.read_text()[-3000:]}")


def stop_monitor(server: Server, sig: int = signal.SIGTERM) -> None:
    """Stop a monitor we started (one process): SIGTERM hands its partitions over."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(sig)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


# --- requests ----------------------------------------------------------------------------
def reference_rows(model: str, n: int, seed: int) -> list[dict]:
    """``n`` rows of the model's reference features, drawn with replacement (seeded)."""
    entry = get_model(model)
    ref = entry.reference()
    picked = np.random.default_rng(seed).integers(0, len(ref), n)
    return ref[entry.card.feature_names].iloc[picked].to_dict("records")


def shifted(rows: list[dict], model: str, feature: str, sigmas: float) -> list[dict]:
    """``rows`` with ``feature`` moved by ``sigmas`` reference standard deviations."""
    sd = float(get_model(model).reference()[feature].std())
    return [{**row, feature: row[feature] + sigmas * sd} for row in rows]


def metric_value(url: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of the first sample of ``name`` on ``url``'s /metrics with ``labels``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            found: dict[str, str] = {}
        elif line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        else:
            continue
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


# --- stores and models -------------------------------------------------------------------
PG_ADMIN = os.environ.get("DRIFTGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_schema_url(dsn: str) -> str:
    """A DSN of a fresh schema (by search_path) in the database of ``dsn``."""
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{dsn}?options=-csearch_path%3D{schema}"


def fresh_name(prefix: str = "live") -> str:
    """A model name no test has used."""
    return f"{prefix}-{secrets.token_hex(3)}"


def register_version(name: str, alpha: float = 1.0) -> RegisteredModel:
    """A new version of ``name``: ridge regression on the diabetes data."""
    from sklearn.linear_model import Ridge

    from models.demo import diabetes_data

    X, y = diabetes_data()
    return register_model(name, Ridge(alpha=alpha).fit(X.to_numpy(), y), X, y,
                          reference_rows=50, trigger={"type": "test"})
