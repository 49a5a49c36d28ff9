"""The real gateway of the end-to-end tests, shared with the locust smoke test."""

from __future__ import annotations

from tests.e2e.conftest import gateway, receiver  # noqa: F401
