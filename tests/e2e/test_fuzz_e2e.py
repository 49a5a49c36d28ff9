"""Property-based fuzzing of the whole OpenAPI document against a real gateway (schemathesis,
positive and negative data, every operation, seeded). Fails on any 5xx, any status or body
the document does not declare (errors included: they must be the documented JSON shape)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import start_gateway_retrying, stop_gateway

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")
# Served model names most of the time, so cases get past 404 to the validation behind it.
CONFIG = """
[dictionaries.models]
values = ["diabetes", "breast-cancer", "diabetes-risk"]

[parameters]
"path.name" = { dictionary = "models", probability = 0.7 }
"body.model" = { dictionary = "models", probability = 0.7 }
"""


def test_no_5xx_and_every_answer_as_documented(demo_models, tmp_path):
    server = start_gateway_retrying(tmp_path)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    try:
        run = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(config), "run", f"{server.url}/docs.json",
             "--url", server.url, "--checks", CHECKS, "--mode", "all", "--max-examples", "50",
             "--seed", "20261127", "--phases", "examples,coverage,fuzzing",
             "--workers", "1",  # schemathesis 4.32's generator is not thread-safe
             "--request-timeout", "30", "--continue-on-failure",
             "--exclude-path", "/metrics",  # Prometheus text, checked by promtool elsewhere
             "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,
        )
    finally:
        stop_gateway(server)
    tail = run.stdout[-8000:]
    assert run.returncode == 0, f"schemathesis found failures:\n{tail}\n{run.stderr[-2000:]}"
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated and generated.group(1) == generated.group(2), tail
    assert int(generated.group(1)) >= 1000, tail  # every operation, many cases each
