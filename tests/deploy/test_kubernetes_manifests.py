"""The Kubernetes manifests in deploy/kubernetes validate offline against the Kubernetes
schemas (``kubernetes-validate`` ships them) and wire what the scale-out needs: gateways
without a monitor, a monitor Deployment with a standby, the DSN from a Secret, probes on
/livez and /readyz, scrape annotations, and only settings driftgate knows."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.30.0"


def _docs() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_name(kind: str, name: str) -> dict:
    (doc,) = [d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_kubernetes(doc: dict) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(_by_name("Deployment", "driftgate-monitor"))
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def _container(name: str) -> dict:
    return _by_name("Deployment", name)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("name,port", [("driftgate-gateway", 3000), ("driftgate-monitor", 3001)])
def test_deployment_probes_secret_and_scrape_annotations(name: str, port: int) -> None:
    deployment = _by_name("Deployment", name)
    container = _container(name)
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == port
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["DRIFTGATE_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "driftgate-store"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert [c["configMapRef"]["name"] for c in container["envFrom"]] == ["driftgate-settings"]


def test_topology_gateways_without_monitor_and_a_standby_monitor() -> None:
    settings = _by_name("ConfigMap", "driftgate-settings")["data"]
    assert settings["DRIFTGATE_MONITOR_IN_GATEWAY"] == "false"
    assert _by_name("Deployment", "driftgate-gateway")["spec"]["replicas"] >= 2
    monitor = _by_name("Deployment", "driftgate-monitor")
    assert monitor["spec"]["replicas"] >= int(settings["DRIFTGATE_MONITOR_PARTITIONS"]) + 1
    assert _container("driftgate-monitor")["command"][-4:-2] == ["monitor", "run"]


def test_every_setting_in_the_manifests_is_one_driftgate_reads() -> None:
    known = {f"DRIFTGATE_{name.upper()}" for name in Settings.model_fields}
    names = set(_by_name("ConfigMap", "driftgate-settings")["data"])
    for deployment in ("driftgate-gateway", "driftgate-monitor"):
        names |= {e["name"] for e in _container(deployment).get("env", [])}
    assert names <= known, names - known
