"""Contract tests of the attribution table (both backends): idempotent writes, lookup by
id, the ``attributions`` column of the export, pruning with the records."""

from __future__ import annotations

import time

from service.store import Store
from service.store.export import export_to_file
from tests.store.store_helpers import make_records


def _doc(x: float) -> dict:
    return {"explainer": "tree", "base_value": 0.5, "output": 0.5 + x,
            "contributions": {"x": x}}


def test_put_get_and_export(store: Store, tmp_path) -> None:
    records = make_records(3)
    store.append(records)
    rows = [{"id": r.id, "model": r.model, "version": r.version, "ts": r.ts,
             "doc": _doc(float(i))} for i, r in enumerate(records[:2])]
    store.attributions_put(rows)
    store.attributions_put([{**rows[0], "doc": _doc(9.0)}])  # a replay keeps the first
    got = store.attributions_get([r.id for r in records] + ["unknown"])
    assert got == {records[0].id: _doc(0.0), records[1].id: _doc(1.0)}
    frame = store.export("m")
    assert list(frame["attributions"]) == [_doc(0.0), _doc(1.0), None]
    back = export_to_file(frame, tmp_path / "out.parquet")
    import pandas as pd

    assert '"contributions":{"x":1.0}' in pd.read_parquet(back)["attributions"].iloc[1]
    assert store.attributions_get([]) == {}


def test_prune_forgets_attributions_of_pruned_records(store: Store) -> None:
    old = make_records(2, ts=time.time() - 7200)
    store.append(old)
    store.attributions_put([{"id": r.id, "model": "m", "version": "1", "ts": r.ts,
                             "doc": _doc(1.0)} for r in old])
    assert store.prune(3600, store.high_water_offset()) == 2
    assert store.attributions_get([r.id for r in old]) == {}
