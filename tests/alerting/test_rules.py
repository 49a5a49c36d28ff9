"""Checks of the shipped Prometheus/Alertmanager assets with the real tools.

promtool and amtool come from the Debian packages ``prometheus`` and ``prometheus-alertmanager``;
when they are missing, scripts/ensure_prometheus.sh installs them (CI runs as root). If they
still cannot be found the tests FAIL: the alerting rules are part of the product.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from service.metrics import exposed_names
from service.observability_config import Ports, alertmanager_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules" / "driftgate.rules.yml"
RULE_TESTS = ROOT / "monitoring" / "rules" / "driftgate.rules.test.yml"
PROM_CONFIG = ROOT / "deploy" / "prometheus.yml"
AM_CONFIG = ROOT / "deploy" / "alertmanager.yml"
ENSURE = ROOT / "scripts" / "ensure_prometheus.sh"

TOOLS = ("promtool", "amtool", "prometheus", "prometheus-alertmanager")

RETRAIN_ALERTS = {
    "DriftgateFeatureDriftActive",
    "DriftgatePerformanceBelowFloor",
    "DriftgatePerformanceAboveCeiling",
}


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    if any(shutil.which(t) is None for t in TOOLS):
        proc = subprocess.run(["bash", str(ENSURE)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.fail(
                f"{ENSURE.name} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
    found = {t: shutil.which(t) for t in TOOLS}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        pytest.fail(f"still not on PATH after {ENSURE.name}: {missing}")
    return found  # type: ignore[return-value]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} -> rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def load_rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [r for r in load_rules() if "alert" in r]


# --- the tools -----------------------------------------------------------------------------------


def test_promtool_check_rules(tools):
    out = run([tools["promtool"], "check", "rules", str(RULES)]).stdout
    assert "SUCCESS" in out


def test_promtool_unit_tests(tools):
    out = run([tools["promtool"], "test", "rules", str(RULE_TESTS)]).stdout
    assert "SUCCESS" in out


def test_promtool_check_prometheus_config(tools):
    out = run([tools["promtool"], "check", "config", str(PROM_CONFIG)]).stdout
    assert "SUCCESS" in out
    # the config loads the shipped rules, not a copy
    cfg = yaml.safe_load(PROM_CONFIG.read_text())
    assert [(PROM_CONFIG.parent / p).resolve() for p in cfg["rule_files"]] == [RULES]


def test_amtool_check_alertmanager_config(tools):
    out = run([tools["amtool"], "check-config", str(AM_CONFIG)]).stdout
    assert "SUCCESS" in out


def routes_for(tools, *labels: str) -> set[str]:
    out = run(
        [tools["amtool"], "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels]
    ).stdout
    return set(out.strip().split(","))


def test_alertmanager_routes_only_retrain_alerts_to_gateway(tools):
    assert routes_for(
        tools, "alertname=DriftgateFeatureDriftActive", "model=iris", "retrain=true"
    ) == {"driftgate-gateway", "driftgate-ops"}
    # an operational alert with a model label must not become a retrain request
    assert routes_for(
        tools, "alertname=DriftgateLatencyP99High", "model=iris", "severity=warning"
    ) == {"driftgate-ops"}
    cfg = yaml.safe_load(AM_CONFIG.read_text())
    gateway = next(r for r in cfg["receivers"] if r["name"] == "driftgate-gateway")
    hook = gateway["webhook_configs"][0]
    assert hook["url"] == "http://localhost:3000/alerts/alertmanager"
    assert hook["send_resolved"] is True
    # the receiver takes only an alerts-scope key: Alertmanager sends it from a file
    assert hook["http_config"]["authorization"]["credentials_file"].endswith(".key")
    assert cfg["route"]["group_by"] == ["alertname", "model"]


# --- the rules' content --------------------------------------------------------------------------


def test_every_alert_has_severity_and_annotations():
    found = alerts()
    assert len(found) >= 8
    for rule in found:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        ann = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert isinstance(ann.get(key), str) and ann[key].strip(), f"{name}: no {key}"
        assert len(ann["runbook"].strip().splitlines()) >= 2, f"{name}: runbook too thin"


def test_alert_names_unique_and_expected_present():
    names = [r["alert"] for r in alerts()]
    assert len(names) == len(set(names))
    assert {
        "DriftgateFeatureDriftActive",
        "DriftgatePerformanceBelowFloor",
        "DriftgateLatencyP99High",
        "DriftgateErrorRatioHigh",
        "DriftgateMonitorLagging",
        "DriftgateWebhookDeadLetters",
        "DriftgateWebhookBacklog",
    } <= set(names)


def test_retrain_label_only_on_model_health_alerts():
    for rule in alerts():
        retrain = rule.get("labels", {}).get("retrain") == "true"
        assert retrain == (rule["alert"] in RETRAIN_ALERTS), rule["alert"]
        if retrain:
            # the gateway needs the model label: the expression must keep it
            assert re.search(r"by \([^)]*\bmodel\b", rule["expr"]), rule["alert"]


def test_drift_alert_fires_fast_enough_for_end_to_end_tests():
    drift = next(r for r in alerts() if r["alert"] == "DriftgateFeatureDriftActive")
    assert drift["for"] in {"0s", "5s", "10s", "15s", "20s"}


def test_rules_use_only_metrics_the_gateway_exposes():
    allowed = exposed_names()
    text = "\n".join(r["expr"] + json.dumps(r.get("annotations", {})) for r in load_rules())
    used = set(re.findall(r"(?<![\w:])driftgate_[a-z_]+", text))
    assert used, "no metric found"
    assert used <= allowed, used - allowed


def test_every_alert_is_unit_tested_firing_and_not_firing():
    doc = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for case in doc["tests"]:
        for t in case.get("alert_rule_test", []):
            (firing if t.get("exp_alerts") else silent).add(t["alertname"])
    names = {r["alert"] for r in alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown not firing"


# --- end to end with the real binaries -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeGateway(http.server.ThreadingHTTPServer):
    """Serves /metrics with one drifting feature and records Alertmanager webhooks."""

    def __init__(self, port: int) -> None:
        self.payloads: list[dict] = []
        self.authorization: list[str | None] = []
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    METRICS = (
        "# TYPE driftgate_drift_active gauge\n"
        'driftgate_drift_active{model="iris",feature="petal_length"} 1\n'
        'driftgate_drift_active{model="iris",feature="sepal_width"} 0\n'
        "# TYPE driftgate_feature_drift_score gauge\n"
        'driftgate_feature_drift_score{model="iris",feature="petal_length",method="ks"} 0.3\n'
    )

    def do_GET(self):  # noqa: N802
        body = self.METRICS.encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/alerts/alertmanager":
            self.server.payloads.append(json.loads(data))  # type: ignore[attr-defined]
            self.server.authorization.append(  # type: ignore[attr-defined]
                self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_drift_metric_reaches_gateway_receiver_via_prometheus_and_alertmanager(tools, tmp_path):
    gw_port, prom_port, am_port = free_port(), free_port(), free_port()
    prom_cfg = yaml.safe_load(PROM_CONFIG.read_text())
    prom_cfg["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    prom_cfg["rule_files"] = [str(RULES)]
    prom_cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{am_port}"
    ]
    for job in prom_cfg["scrape_configs"]:
        if job["job_name"] == "driftgate":
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{gw_port}"]
    prom_cfg["scrape_configs"] = [
        j for j in prom_cfg["scrape_configs"] if j["job_name"] == "driftgate"
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
    key_file = tmp_path / "driftgate-alerts.key"
    key_file.write_text("dg_test_alerts_key\n")
    am_cfg = alertmanager_config(Ports(f"127.0.0.1:{gw_port}"), key_file)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_cfg))

    server = FakeGateway(gw_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen] = []
    am_log_path, prom_log_path = tmp_path / "am.log", tmp_path / "prom.log"
    with am_log_path.open("w") as am_log, prom_log_path.open("w") as prom_log:
        try:
            procs.append(
                subprocess.Popen(
                    [
                        tools["prometheus-alertmanager"],
                        f"--config.file={tmp_path / 'alertmanager.yml'}",
                        f"--storage.path={tmp_path / 'am'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",  # no HA gossip
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=am_log,
                )
            )
            procs.append(
                subprocess.Popen(
                    [
                        tools["prometheus"],
                        f"--config.file={tmp_path / 'prometheus.yml'}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=prom_log,
                )
            )
            deadline = time.monotonic() + 90
            alerts_seen: list[dict] = []
            while time.monotonic() < deadline and not alerts_seen:
                for p in procs:
                    assert p.poll() is None, (tmp_path / "prom.log").read_text()[-3000:] + (
                        tmp_path / "am.log"
                    ).read_text()[-3000:]
                alerts_seen = [a for body in server.payloads for a in body["alerts"]]
                time.sleep(0.5)
            assert alerts_seen, (
                "no webhook from Alertmanager within 90 s:\n"
                + (tmp_path / "prom.log").read_text()[-3000:]
            )
            body = server.payloads[0]
            # the shipped config sends the alerts key from its file as a bearer credential
            assert server.authorization[0] == "Bearer dg_test_alerts_key"
            assert body["version"] == "4"
            assert body["status"] == "firing"
            assert body["groupLabels"] == {
                "alertname": "DriftgateFeatureDriftActive",
                "model": "iris",
            }
            (alert,) = body["alerts"]
            assert alert["labels"]["model"] == "iris"
            assert alert["labels"]["feature"] == "petal_length"
            assert alert["labels"]["retrain"] == "true"
            assert "ks=0.3" in alert["annotations"]["description"]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            server.shutdown()
            server.server_close()
