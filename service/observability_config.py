"""Prometheus and Alertmanager configuration for one gateway, rendered from ``deploy/*.yml``
with the ports given (one place to change them) and the rules file by absolute path.

``driftgate observability config`` writes both files and prints the commands that start
them; the end-to-end tests start real Prometheus and Alertmanager from the same rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = ROOT / "monitoring" / "rules" / "driftgate.rules.yml"
SHIPPED_GATEWAY = "localhost:3000"
SHIPPED_KEY_FILE = "/etc/alertmanager/driftgate-alerts.key"


@dataclass(frozen=True)
class Ports:
    gateway: str = SHIPPED_GATEWAY  # host:port of the driftgate gateway
    prometheus: int = 9090
    alertmanager: int = 9093
    host: str = "localhost"
    retrain_worker: str = "localhost:3100"  # host:port of ``driftgate retrain worker``


def prometheus_config(ports: Ports) -> dict[str, Any]:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["rule_files"] = [str(RULES)]
    config["alerting"] = {"alertmanagers": [
        {"static_configs": [{"targets": [f"{ports.host}:{ports.alertmanager}"]}]}]}
    targets = {"driftgate": ports.gateway, "driftgate-retrain": ports.retrain_worker}
    for job in config["scrape_configs"]:
        target = targets.get(job["job_name"], f"{ports.host}:{ports.prometheus}")
        job["static_configs"] = [{"targets": [target]}]
    return config


def alertmanager_config(ports: Ports, alerts_key_file: Path | None = None) -> dict[str, Any]:
    """The shipped Alertmanager configuration with these ports and, when given, the file
    holding the gateway's ``alerts`` key (its bearer credential)."""
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook["url"].replace(SHIPPED_GATEWAY, ports.gateway)
            authorization = hook.get("http_config", {}).get("authorization")
            if authorization is not None and alerts_key_file is not None:
                authorization["credentials_file"] = str(alerts_key_file.resolve())
    return config


def commands(ports: Ports, directory: Path) -> list[list[str]]:
    """The command lines that start Prometheus and Alertmanager on these files and ports.
    Alertmanager runs as one node (no cluster port to collide with a second instance)."""
    return [
        ["prometheus", f"--config.file={directory / 'prometheus.yml'}",
         f"--storage.tsdb.path={directory / 'tsdb'}",
         f"--web.listen-address={ports.host}:{ports.prometheus}", "--web.enable-lifecycle"],
        ["prometheus-alertmanager", f"--config.file={directory / 'alertmanager.yml'}",
         f"--storage.path={directory / 'alertmanager'}",
         f"--web.listen-address={ports.host}:{ports.alertmanager}",
         "--cluster.listen-address="],
    ]


def write(ports: Ports, directory: Path, alerts_key_file: Path | None = None) -> list[list[str]]:
    """Write ``prometheus.yml`` and ``alertmanager.yml`` into ``directory``; the commands.
    ``alerts_key_file`` (default ``<directory>/driftgate-alerts.key``) holds the gateway's
    ``alerts`` key that Alertmanager sends as its bearer credential."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = alerts_key_file or directory / "driftgate-alerts.key"
    (directory / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(ports)))
    (directory / "alertmanager.yml").write_text(
        yaml.safe_dump(alertmanager_config(ports, key_file)))
    return commands(ports, directory.resolve())
