"""``bentoml build`` packages the gateway with the served models; ``bentoml serve <tag>``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.e2e.conftest import BENTOML, ROOT, free_port, start_gateway, stop_gateway
from tests.e2e.traffic import reference_rows


def test_bento_build_includes_models_and_serves(demo_models, tmp_path):
    build = subprocess.run([str(BENTOML), "build", "-o", "tag"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    tag = build.stdout.strip().splitlines()[-1].split("__tag__:")[-1].strip()
    info = json.loads(subprocess.run([str(BENTOML), "get", tag, "-o", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    packaged = {m["tag"].split(":")[0] for m in info["models"]}
    assert packaged == {"breast-cancer", "diabetes", "diabetes-risk"}
    bento = Path(subprocess.run([str(BENTOML), "get", tag, "-o", "path"], capture_output=True,
                                text=True, check=True).stdout.strip())
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    for package in ("orjson", "threadpoolctl", "psycopg", "standardwebhooks"):
        assert package in requirements, f"{package} missing from the Bento's requirements"
    assert not (bento / "src" / "driftgate.yaml").exists()  # webhook secrets stay out
    assert (bento / "env" / "docker" / "Dockerfile").exists()  # what containerize builds
    server = start_gateway(tmp_path, free_port(), target=tag, cwd=tmp_path)
    try:
        rows = reference_rows("diabetes-risk", 2, seed=0)
        response = httpx.post(f"{server.url}/predict", timeout=10,
                              json={"model": "diabetes-risk", "inputs": rows})
        assert response.status_code == 200, response.text
        assert len(response.json()["ids"]) == 2
    finally:
        stop_gateway(server)
