"""``make build`` / ``driftgate bento build``: a Bento of the service with the models it
serves (every registered model's latest version and every version the serving file names),
not a fixed list, and never the serving file, ``.data`` or ``.env`` (``bentofile.yaml``
excludes them). A served Bento keeps its data outside itself (see ``default_data_dir``)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from models.registry import list_models
from service.config import ServingConfig

ROOT = Path(__file__).resolve().parents[1]


def served_model_tags(serving: ServingConfig) -> list[str]:
    """``name:version`` of every registered model's latest version and of every version the
    serving file routes to (default, aliases, canary, shadow)."""
    latest: dict[str, str] = {}
    versions: dict[str, set[str]] = {}
    for entry in list_models():  # oldest first: the last one of a name is its latest
        latest[entry.name] = entry.version
        versions.setdefault(entry.name, set()).add(entry.version)
    tags = {f"{name}:{version}" for name, version in latest.items()}
    for name, config in serving.models.items():
        named = [config.default, *config.aliases.values(),
                 config.canary.version if config.canary else None, config.shadow]
        for version in named:
            if version in versions.get(name, set()):
                tags.add(f"{name}:{version}")
    return sorted(tags)


def build(serving: ServingConfig, bentofile: Path = ROOT / "bentofile.yaml") -> str:
    """Build the Bento; returns its tag."""
    recipe = yaml.safe_load(bentofile.read_text())
    recipe["models"] = served_model_tags(serving)
    if not recipe["models"]:
        raise SystemExit("no registered models to pack: register one first")
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "bentofile.yaml"
        generated.write_text(yaml.safe_dump(recipe))
        bentoml = Path(sys.executable).parent / "bentoml"
        run = subprocess.run([str(bentoml), "build", "-f", str(generated), "-o", "tag", str(ROOT)],
                             capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"bentoml build failed:\n{run.stderr[-3000:]}")
    return run.stdout.strip().splitlines()[-1].split("__tag__:")[-1].strip()
