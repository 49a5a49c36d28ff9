"""``make build`` packages the gateway with every served model (one registered by the test,
not only the demo models); ``bentoml serve <tag>`` serves it and logs outside the Bento."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from models.registry import register_model
from tests.e2e.conftest import BENTOML, ROOT, free_port, start_gateway, stop_gateway


def test_make_build_packs_served_models_and_the_bento_logs_outside_itself(demo_models, tmp_path):
    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in X.columns]
    custom = register_model("bento-iris", LogisticRegression(max_iter=500).fit(X, y), X, y)
    (tmp_path / "empty.yaml").write_text("{}\n")
    env = {**os.environ, "DRIFTGATE_CONFIG_FILE": str(tmp_path / "empty.yaml")}
    build = subprocess.run(["make", "build"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    built = re.search(r"^built (\S+)$", build.stdout, re.M)  # make may add its own lines
    assert built, build.stdout[-2000:]
    tag = built.group(1)
    info = json.loads(subprocess.run([str(BENTOML), "get", tag, "-o", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    packaged = {m["tag"] for m in info["models"]}
    assert custom.tag in packaged
    assert {t.split(":")[0] for t in packaged} >= {"breast-cancer", "diabetes", "diabetes-risk"}
    bento = Path(subprocess.run([str(BENTOML), "get", tag, "-o", "path"], capture_output=True,
                                text=True, check=True).stdout.strip())
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    for package in ("orjson", "threadpoolctl", "psycopg", "standardwebhooks"):
        assert package in requirements, f"{package} missing from the Bento's requirements"
    assert not (bento / "src" / "driftgate.yaml").exists()  # webhook secrets stay out
    assert (bento / "env" / "docker" / "Dockerfile").exists()  # what containerize builds

    # Served as a user serves a Bento: no DRIFTGATE_DATA_DIR, so the default applies.
    server = start_gateway(tmp_path, free_port(), target=tag, cwd=tmp_path,
                           extra_env={"DRIFTGATE_DATA_DIR": None})
    try:
        row = X.head(2).to_dict("records")
        response = httpx.post(f"{server.url}/predict", timeout=10,
                              json={"model": "bento-iris", "inputs": row})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == custom.version
    finally:
        stop_gateway(server)
    assert not list(bento.rglob("predictions.sqlite3")), "the log is inside the Bento"
    home = Path(server_home(tmp_path))
    assert (home / "driftgate-data" / "predictions.sqlite3").exists()


def server_home(data_dir: Path) -> str:
    return str(data_dir / "bentoml-home")
