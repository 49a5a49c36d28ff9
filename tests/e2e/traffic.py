"""Request helpers for end-to-end tests: stationary and drifted traffic from the reference."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from loadtests.harness import metric_value, reference_rows, shifted  # noqa: F401 - re-exported


def send(url: str, model: str, rows: list[dict], per_request: int = 1,
         headers: dict[str, str] | None = None) -> list[str]:
    """POST the rows to /predict; returns the prediction ids (all requests must succeed)."""
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        for i in range(0, len(rows), per_request):
            response = client.post("/predict",
                                   json={"model": model, "inputs": rows[i : i + per_request]})
            assert response.status_code == 200, response.text
            ids.extend(response.json()["ids"])
    return ids


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.25,
             what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
