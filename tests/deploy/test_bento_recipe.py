"""The Bento recipe installs what the project needs at run time: a built Bento that lacks
a dependency of ``pyproject.toml`` fails only when the missing import is reached."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_bento_packages_are_the_projects_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    recipe = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert sorted(recipe["python"]["packages"]) == sorted(project["dependencies"])
