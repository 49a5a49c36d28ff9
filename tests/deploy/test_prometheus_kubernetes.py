"""The Kubernetes scrape configuration: one job per component, pods selected by the labels
and annotations the manifests set, checked by promtool (the Debian build has no Kubernetes
service discovery, so the discovery block is swapped for a static one to check the rest)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.alerting.test_rules import RULES, tools  # noqa: F401 - the promtool fixture

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "prometheus-kubernetes.yml"
MANIFESTS = ROOT / "deploy" / "kubernetes"


def test_promtool_accepts_the_kubernetes_scrape_config(tools, tmp_path):  # noqa: F811
    config = yaml.safe_load(CONFIG.read_text())
    assert [(CONFIG.parent / p).resolve() for p in config["rule_files"]] == [RULES]
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["static_configs"] = [{"targets": ["localhost:3000"]}]
    config["rule_files"] = [str(RULES)]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    proc = subprocess.run([tools["promtool"], "check", "config", str(checked)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_each_job_keeps_exactly_its_component_pods():
    config = yaml.safe_load(CONFIG.read_text())
    deployments = {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]
        for path in MANIFESTS.glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == "Deployment"
    }
    wanted = {"driftgate": "driftgate-gateway", "driftgate-monitor": "driftgate-monitor"}
    assert {job["job_name"] for job in config["scrape_configs"]} == set(wanted)
    for job in config["scrape_configs"]:
        for name, pod in deployments.items():
            values = {
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape":
                    pod["annotations"]["prometheus.io/scrape"],
                "__meta_kubernetes_pod_label_app_kubernetes_io_name":
                    pod["labels"]["app.kubernetes.io/name"],
                "__meta_kubernetes_pod_label_app_kubernetes_io_component":
                    pod["labels"]["app.kubernetes.io/component"],
            }
            kept = all(
                re.fullmatch(rule["regex"], ";".join(values[s] for s in rule["source_labels"]))
                for rule in job["relabel_configs"] if rule.get("action") == "keep"
            )
            assert kept == (wanted[job["job_name"]] == name), (job["job_name"], name)
