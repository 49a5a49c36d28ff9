"""The generated Grafana dashboards: up to date, well-formed, and their PromQL sane."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana import build
from service.metrics import exposed_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"

KNOWN_METRICS = exposed_names() | {"ALERTS"}
HISTOGRAMS = {
    "driftgate_prediction_latency_seconds",
    "driftgate_label_delay_seconds",
    "driftgate_prediction_value",
    "driftgate_log_write_seconds",
}
EXPECTED_TITLES = {
    "driftgate / Overview",
    "driftgate / Drift",
    "driftgate / Model quality",
    "driftgate / Operations",
}


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


def _metric_names(expr: str) -> set[str]:
    """Identifiers followed by a selector or range: metric names in our expressions."""
    names = set(re.findall(r"\b(ALERTS|driftgate_[a-z_]+)\b", expr))
    out = set()
    for name in names:
        for suffix in ("_bucket", "_count", "_sum"):
            base = name.removesuffix(suffix)
            if name.endswith(suffix) and base in HISTOGRAMS:
                name = base
        out.add(name)
    return out


def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    in_string = False
    for ch in expr:
        if ch == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack and not in_string


def test_committed_json_is_up_to_date(tmp_path: Path) -> None:
    build.write_all(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert fresh.keys() == committed.keys(), "run `python -m grafana.build`"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} is stale: run `python -m grafana.build`"


def test_generation_is_deterministic() -> None:
    assert build.generate() == build.generate()


def test_check_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "grafana.build", "--check"], cwd=ROOT, capture_output=True
    )
    assert ok.returncode == 0, ok.stderr.decode()
    build.write_all(tmp_path)
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_text(first.read_text().replace("driftgate", "driftgat3", 1))
    stale = subprocess.run(
        [sys.executable, "-m", "grafana.build", "--check", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
    )
    assert stale.returncode == 1
    assert b"stale" in stale.stderr


def test_dashboards_titles_uids_and_variables() -> None:
    dashboards = _dashboards()
    assert {d["title"] for d in dashboards} == EXPECTED_TITLES
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    for d in dashboards:
        assert "__inputs" not in d
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        model = variables["model"]
        assert model["query"] == "label_values(driftgate_predictions_total, model)"
        assert model["multi"] and model["includeAll"]
        for v in variables.values():
            if v["type"] == "query":
                assert v["datasource"]["uid"] == "${datasource}"
                assert v["allValue"] == ".*"
    by_title = {d["title"]: d for d in dashboards}
    names = {t: {v["name"] for v in d["templating"]["list"]} for t, d in by_title.items()}
    assert "version" in names["driftgate / Overview"]
    assert "version" in names["driftgate / Model quality"]
    assert "feature" in names["driftgate / Drift"]


def test_every_panel_has_datasource_variable_description_and_expr() -> None:
    for d in _dashboards():
        ids = []
        for panel in build.iter_panels(d):
            where = f"{d['title']} / {panel.get('title')}"
            ids.append(panel["id"])
            assert panel.get("title"), where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert len(panel.get("description", "")) >= 60, f"{where}: describe it for on-call"
            assert panel.get("targets"), where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target["datasource"]["uid"] == "${datasource}", where
                assert target["refId"], where
        assert len(ids) == len(set(ids)), f"{d['title']}: duplicate panel ids"


def test_no_import_placeholders() -> None:
    for path in DASHBOARDS.glob("*.json"):
        assert "${DS_" not in path.read_text(), path


def test_all_queries_are_substituted_and_sane() -> None:
    queries = build.all_queries()
    assert len(queries) >= 40
    assert {q.dashboard for q in queries} == EXPECTED_TITLES
    for dashboard, panel, expr in queries:
        where = f"{dashboard} / {panel}: {expr}"
        assert "$" not in expr, where
        assert _balanced(expr), where
        names = _metric_names(expr)
        assert names, where
        assert names <= KNOWN_METRICS, f"{where}: unknown {names - KNOWN_METRICS}"
        assert not re.search(r'(model|version|feature)="\.\*"', expr), where


def test_key_panels_cover_the_essentials() -> None:
    key = [q for q in build.all_queries() if q.key]
    covered = set().union(*(_metric_names(q.expr) for q in key))
    for metric in (
        "driftgate_predictions_total",
        "driftgate_prediction_latency_seconds",
        "driftgate_feature_drift_score",
        "driftgate_drift_active",
        "driftgate_model_performance",
    ):
        assert metric in covered, metric


def test_substitute() -> None:
    assert build.substitute('x{a=~"$model",b=~"${version:regex}"}[$__rate_interval]') == (
        'x{a=~".*",b=~".*"}[1m]'
    )
    with pytest.raises(KeyError):
        build.substitute("$unknown")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_queries_parse_with_promtool(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule, no server needed."""
    rules = [{"record": f"check:q{i}", "expr": q.expr} for i, q in enumerate(build.all_queries())]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_provisioning_files() -> None:
    prov = ROOT / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://localhost:9090"
    dash = yaml.safe_load((prov / "dashboards" / "driftgate.yaml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
