"""Prediction records to a flat DataFrame, and DataFrames to parquet / CSV files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from service.store import codec
from service.store.records import PredictionRecord

__all__ = ["records_to_frame", "export_to_file", "META_COLUMNS"]

META_COLUMNS = (
    "id", "offset", "ts", "model", "version", "arm", "prediction", "probabilities",
    "latency_ms", "request_id", "trace_id", "label", "label_ts",
)  # fmt: skip


def records_to_frame(records: Sequence[PredictionRecord]) -> pd.DataFrame:
    """One row per record: the meta columns, then one column per feature (in first-seen
    order; a feature whose name clashes with a meta column, or with ``attributions`` that
``Store.export`` adds, is prefixed ``feature__``).
    ``probabilities`` holds dicts (or None)."""
    meta = {col: [getattr(r, col) for r in records] for col in META_COLUMNS}
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r.features))
    feats = {
        (f"feature__{n}" if n in meta or n == "attributions" else n):
        [r.features.get(n) for r in records] for n in names
    }
    frame = pd.DataFrame({**meta, **feats})
    if not records:
        frame = frame.astype({"offset": "int64", "ts": "float64"})
    return frame


def export_to_file(
    df: pd.DataFrame, path: str | Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> Path:
    """Write an export; dict/list cells (probabilities, structured predictions or labels)
    become JSON text so both formats round-trip them the same way."""
    path = Path(path)
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, (dict, list))).any():
            out[col] = out[col].map(codec.dumps)
    if fmt == "parquet":
        out.to_parquet(path, index=False)
    elif fmt == "csv":
        out.to_csv(path, index=False)
    else:
        raise ValueError(f"unknown format {fmt!r} (parquet or csv)")
    return path
