"""``bentoml build`` never packs secrets: a source tree holding a serving file with an inline
webhook secret, ``.env``, ``.env.production``, ``.data``, ``secrets/`` and a key file builds
a Bento in which none of them, and none of their secrets, appear."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.e2e.conftest import BENTOML, ROOT

CANARIES = {  # file -> (its text, the secret in it)
    "driftgate.yaml": ("webhooks:\n  - url: http://r/\n    secret: whsec_canaryServing01\n",
                       "whsec_canaryServing01"),
    ".env": ("DRIFTGATE_STORE_URL=postgresql://app:canaryDsnPassword02@127.0.0.1:1/x\n",
             "canaryDsnPassword02"),
    ".env.production": ("DRIFTGATE_WEBHOOK_SECRET=canaryEnvProd03\n", "canaryEnvProd03"),
    ".data/predictions.sqlite3": ("canaryLogData04", "canaryLogData04"),
    "secrets/webhook": ("canarySecretsDir05", "canarySecretsDir05"),
    "driftgate-alerts.key": ("dg_canary_alerts_key06", "dg_canary_alerts_key06"),
}


def test_built_bento_holds_no_secret(tmp_path):
    source = tmp_path / "src"
    for part in ("service", "models", "monitoring"):
        shutil.copytree(ROOT / part, source / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, (text, _) in CANARIES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    recipe = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    recipe.pop("models", None)  # the service alone: this test is about what else is packed
    (source / "bentofile.yaml").write_text(yaml.safe_dump(recipe))
    build = subprocess.run([str(BENTOML), "build", "-o", "tag", str(source)], cwd=source,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    tag = build.stdout.strip().splitlines()[-1].split("__tag__:")[-1].strip()
    bento = Path(subprocess.run([str(BENTOML), "get", tag, "-o", "path"], capture_output=True,
                                text=True, check=True).stdout.strip())
    try:
        files = [p for p in bento.rglob("*") if p.is_file()]
        assert any(p.name == "gateway.py" for p in files)  # the service itself is packed
        packed = {p.relative_to(bento / "src").as_posix() for p in files
                  if (bento / "src") in p.parents}
        for name, (_, secret) in CANARIES.items():
            assert name not in packed, f"{name} was packed into the Bento"
            leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
            assert not leaked, f"the secret of {name} is in {leaked}"
    finally:
        subprocess.run([str(BENTOML), "delete", tag, "-y"], capture_output=True)
