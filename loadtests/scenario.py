"""Traffic for the load tests, without locust (importing locust monkey-patches the process):
reference-data payloads with labels, the drift schedule, thresholds and the burst shape."""

from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from loadtests.harness import shifted
from models.registry import LABEL_COLUMN, get_model

DEFAULT_MODELS = "breast-cancer,diabetes,diabetes-risk"
V2_DATATYPE = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}


def env_float(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else None


# --- payloads -----------------------------------------------------------------------------


@dataclass
class ModelPool:
    """Reference rows of one model with their labels, and the same rows drifted."""

    name: str
    kinds: dict[str, str]
    rows: list[dict[str, Any]]
    labels: list[Any]
    drifted: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, name: str, drift_feature: str | None, sigmas: float) -> ModelPool:
        entry = get_model(name)
        card = entry.card
        ref = entry.reference()
        rows = [_plain(r) for r in ref[card.feature_names].to_dict("records")]
        labels = [_plain_value(v) for v in ref[LABEL_COLUMN]]
        kinds = {f.name: f.kind for f in card.features}
        numeric = [f.name for f in card.features if f.kind == "numeric"]
        feature = drift_feature if drift_feature in numeric else (numeric[0] if numeric else None)
        drifted = shifted(rows, name, feature, sigmas) if feature else rows
        return cls(name, kinds, rows, labels, drifted)

    def sample(self, n: int, drift: bool) -> tuple[list[dict[str, Any]], list[Any]]:
        picked = [random.randrange(len(self.rows)) for _ in range(n)]
        source = self.drifted if drift else self.rows
        return [source[i] for i in picked], [self.labels[i] for i in picked]

    def v2_body(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "inputs": [
                {"name": name, "datatype": V2_DATATYPE[kind], "shape": [len(rows)],
                 "data": [row[name] for row in rows]}
                for name, kind in self.kinds.items()
            ]
        }


def _plain_value(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain_value(v) for k, v in row.items()}


class DriftSchedule:
    """Counts prediction requests; drifted payloads from the ``after``-th request on."""

    def __init__(self, after: int | None) -> None:
        self.after = after
        self.sent = 0

    def next(self) -> bool:
        """Count one request; True when it must carry drifted rows."""
        self.sent += 1
        return self.after is not None and self.sent > self.after


def threshold_failures(num_requests: int, fail_ratio: float, p95_ms: float | None,
                       max_p95_ms: float | None, max_fail_ratio: float | None,
                       min_requests: int = 1) -> list[str]:
    """Why a run misses its thresholds (empty: it passed)."""
    problems = []
    if num_requests < min_requests:
        problems.append(f"{num_requests} requests < {min_requests}")
    if max_fail_ratio is not None and fail_ratio > max_fail_ratio:
        problems.append(f"failure ratio {fail_ratio:.4f} > {max_fail_ratio}")
    if max_p95_ms is not None and p95_ms is not None and p95_ms > max_p95_ms:
        problems.append(f"p95 {p95_ms:.0f} ms > {max_p95_ms:.0f} ms")
    return problems


@dataclass
class Traffic:
    """Process-wide state shared by the users: payload pools, drift, pending labels."""

    pools: list[ModelPool]
    drift: DriftSchedule
    rows_per_request: int
    feedback_share: float
    pending: deque[tuple[str, Any]] = field(default_factory=lambda: deque(maxlen=100_000))

    @classmethod
    def from_env(cls) -> Traffic:
        names = [n.strip() for n in os.environ.get("LOCUST_MODELS", DEFAULT_MODELS).split(",")]
        sigmas = env_float("DRIFT_SIGMAS") or 2.0
        feature = os.environ.get("DRIFT_FEATURE") or None
        after = os.environ.get("DRIFT_AFTER", "").strip()
        return cls(
            pools=[ModelPool.load(n, feature, sigmas) for n in names if n],
            drift=DriftSchedule(int(after) if after else None),
            rows_per_request=int(os.environ.get("LOCUST_ROWS", "1")),
            feedback_share=float(os.environ.get("FEEDBACK_SHARE", "0.3")),
        )

    def payload(self) -> tuple[ModelPool, list[dict[str, Any]], list[Any]]:
        pool = random.choice(self.pools)
        rows, labels = pool.sample(random.randint(1, self.rows_per_request), self.drift.next())
        return pool, rows, labels

    def remember(self, ids: list[str], labels: list[Any]) -> None:
        for pid, label in zip(ids, labels, strict=True):
            if random.random() < self.feedback_share:
                self.pending.append((pid, label))


def burst_users(run_time: float, base: int, peak: int, period: float = 30.0,
                burst: float = 10.0) -> int:
    """Users at ``run_time``: ``peak`` during the last ``burst`` s of each period, else base."""
    return peak if run_time % period >= period - burst else base


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["loop"]:
        sys.exit("usage: python -m loadtests.scenario loop [--stationary-seconds S] [--keep]")
    from loadtests.loop import main

    sys.exit(main(sys.argv[2:]))
