"""``make serve`` killed with SIGKILL (its whole process group, as a terminal or a supervisor
does): the workers die with it and the next ``make serve`` on the same port starts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.e2e.conftest import ROOT, free_port, private_bentoml_home


def _make_serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DRIFTGATE_DATA_DIR": str(data_dir),
           "BENTOML_HOME": private_bentoml_home(data_dir),
           "DRIFTGATE_CONFIG_FILE": str(data_dir / "driftgate.yaml")}
    log = (data_dir / f"make-serve-{port}.log").open("ab")
    return subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make serve exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready in {timeout}s")


def _holders(port: int) -> list[str]:
    """Who listens on ``port``: pid, parent, process group and command of each."""
    found = []
    for c in psutil.net_connections(kind="tcp"):
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN:
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(c.pid)
                found.append(f"{p.pid} ppid={p.ppid()} pgid={os.getpgid(p.pid)} "
                             f"{' '.join(p.cmdline()[:4])}")
    return found


def _port_free(port: int) -> bool:
    return not _holders(port)


def test_sigkill_of_make_serve_frees_the_port_for_the_next_start(demo_models, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = _make_serve(tmp_path, port)
    started: list[psutil.Process] = []
    second = None
    try:
        _wait_ready(url, first)
        started = psutil.Process(first.pid).children(recursive=True)
        tree = [f"{p.pid} ppid={p.ppid()} pgid={os.getpgid(p.pid)} {' '.join(p.cmdline()[:4])}"
                for p in started]
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        deadline = time.monotonic() + 30  # a worker shuts down gracefully, hard after 10 s
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert _port_free(port), (
            f"the port is still held after its server was killed: {_holders(port)}; "
            f"process tree before the kill: {tree}; log: "
            f"{(tmp_path / f'make-serve-{port}.log').read_text()[-3000:]}"
        )
        second = _make_serve(tmp_path, port)
        _wait_ready(url, second)
        response = httpx.get(f"{url}/models", timeout=10)
        assert response.status_code == 200
    finally:
        if second is not None and second.poll() is None:
            survivors = psutil.Process(second.pid).children(recursive=True)
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=30)
            started.extend(survivors)
        _, alive = psutil.wait_procs(started, timeout=15)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
