"""The dashboard sources, one module per dashboard, in the order they are listed."""

from __future__ import annotations

from types import ModuleType

from . import drift, operations, overview, quality

DASHBOARDS: tuple[ModuleType, ...] = (overview, drift, quality, operations)
