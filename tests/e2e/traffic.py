"""Request helpers for end-to-end tests: stationary and drifted traffic from the reference."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import numpy as np

from models.registry import get_model


def reference_rows(model: str, n: int, seed: int) -> list[dict]:
    entry = get_model(model)
    ref = entry.reference()
    picked = np.random.default_rng(seed).integers(0, len(ref), n)
    return ref[entry.card.feature_names].iloc[picked].to_dict("records")


def shifted(rows: list[dict], model: str, feature: str, sigmas: float) -> list[dict]:
    sd = float(get_model(model).reference()[feature].std())
    return [{**row, feature: row[feature] + sigmas * sd} for row in rows]


def send(url: str, model: str, rows: list[dict], per_request: int = 1) -> list[str]:
    """POST the rows to /predict; returns the prediction ids (all requests must succeed)."""
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(0, len(rows), per_request):
            response = client.post("/predict",
                                   json={"model": model, "inputs": rows[i : i + per_request]})
            assert response.status_code == 200, response.text
            ids.extend(response.json()["ids"])
    return ids


def metric_value(url: str, name: str, labels: dict[str, str]) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            found: dict[str, str] = {}
        elif line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        else:
            continue
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.25,
             what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
