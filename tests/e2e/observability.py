"""Real Prometheus and Alertmanager for end-to-end tests, configured from deploy/."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from service.observability_config import Ports, write
from tests.e2e.conftest import ROOT, free_port


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_prometheus.sh")], check=True)
        path = shutil.which(tool)
    assert path, f"{tool} is not installed and scripts/ensure_prometheus.sh could not install it"
    return path


@dataclass
class Observability:
    prometheus_url: str
    alertmanager_url: str
    processes: list[subprocess.Popen]

    def query(self, expr: str) -> list[dict]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr},
                             timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready: {log.read_text()[-3000:]}")


def start_observability(workdir: Path, gateway_port: int,
                        alerts_key_file: Path | None = None) -> Observability:
    """Prometheus (1 s scrape and evaluation, the shipped rules) and Alertmanager routing
    retrain alerts to the gateway (with the alerts key in ``alerts_key_file``), both
    configured from deploy/*.yml with test ports."""
    workdir.mkdir(parents=True, exist_ok=True)
    prom_port, am_port = free_port(), free_port()
    ports = Ports(f"127.0.0.1:{gateway_port}", prom_port, am_port, host="127.0.0.1")
    # what users run, sped up below
    prometheus_cmd, alertmanager_cmd = write(ports, workdir, alerts_key_file)
    am = yaml.safe_load((workdir / "alertmanager.yml").read_text())
    for route in [am["route"], *am["route"].get("routes", [])]:
        route.update(group_wait="1s", group_interval="5s")
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(am))
    prom = yaml.safe_load((workdir / "prometheus.yml").read_text())
    prom["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    for job in prom["scrape_configs"]:
        job["scrape_interval"] = "1s"
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(prom))
    processes = []
    am_log, prom_log = workdir / "alertmanager.log", workdir / "prometheus.log"
    processes.append(subprocess.Popen(
        [require(alertmanager_cmd[0]), *alertmanager_cmd[1:]],
        stdout=am_log.open("w"), stderr=subprocess.STDOUT))
    processes.append(subprocess.Popen(
        [require(prometheus_cmd[0]), *prometheus_cmd[1:]],
        stdout=prom_log.open("w"), stderr=subprocess.STDOUT))
    obs = Observability(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", processes)
    try:
        _wait_ready(obs.alertmanager_url, processes[0], am_log)
        _wait_ready(obs.prometheus_url, processes[1], prom_log)
    except RuntimeError:
        obs.stop()
        raise
    return obs
