"""Fixtures shared across test packages."""

from __future__ import annotations

import pytest

from models.demo import register_demo_models
from models.registry import list_models


@pytest.fixture(scope="session")
def demo_models() -> dict[str, str]:
    """Demo models registered once per session: name -> latest version at that time."""
    register_demo_models(only_missing=True)
    return {m.name: m.version for m in list_models()}
