"""Record factories shared by the store tests (imported as a plain module)."""

from __future__ import annotations

from typing import Any

from service.store import PredictionRecord


def make_records(n: int, model: str = "m", version: str = "1", **kw: Any) -> list[PredictionRecord]:
    return [
        PredictionRecord(
            model=model,
            version=version,
            features={"x": float(i), "colour": "red" if i % 2 else "blue", "flag": bool(i % 3)},
            prediction="yes" if i % 2 else "no",
            probabilities={"no": 0.25, "yes": 0.75},
            latency_ms=1.5,
            request_id=f"req-{i}",
            trace_id="0af7651916cd43dd8448eb211c80319c",
            **kw,
        )
        for i in range(n)
    ]
