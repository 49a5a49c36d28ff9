"""Real-data streams for ``python -m monitoring.benchmark``: false alarms and delays on data
that installed packages ship, driftgate beside river's ADWIN in the same run.

Each data set is split per seed: the rows of every class but one (the *subpopulation*) are
shuffled and halved; one half, resampled to 2,000 rows as users often do, is the reference
(so the reference holds only as many distinct rows as that half); stationary traffic is drawn
with replacement from the other half. Two real changes follow 500 stationary records: the held
out class's rows arriving (half the traffic), and the most variable feature's population moving
by one reference standard deviation. The model is a logistic regression fitted on the reference
half (its predicted class is monitored too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from river import drift

from monitoring.config import MonitorConfig
from monitoring.monitor import ModelMonitor

__all__ = ["DATASETS", "RealData", "load", "real_table"]

DRIFT_KINDS = ("feature_drift", "prediction_drift", "multivariate_drift")
WARMUP = 500
HORIZON = 1000


@dataclass(frozen=True)
class RealData:
    """A data set: features (numeric), class labels, the class held out as the change."""

    name: str
    x: pd.DataFrame
    y: np.ndarray
    held_out: Any


def _sklearn(name: str) -> Callable[[], RealData]:
    def load() -> RealData:
        from sklearn import datasets

        b = getattr(datasets, f"load_{name}")()
        x = pd.DataFrame(b.data, columns=[f"f{i}" for i in range(b.data.shape[1])])
        return RealData(name, x, np.asarray(b.target), int(np.bincount(b.target).argmin()))
    return load


def _image_segments() -> RealData:
    from river import datasets

    rows, ys = zip(*datasets.ImageSegments(), strict=True)
    x = pd.DataFrame(list(rows)).astype(float)
    x.columns = [f"f{i}" for i in range(x.shape[1])]
    return RealData("river ImageSegments", x, np.asarray(ys), "sky")


def _shuttle() -> RealData:
    """NASA shuttle sensor readings (river's Statlog Shuttle): 9 integer features, several of
    them heavy-tailed (kurtosis in the thousands: mostly near 0, a few readings of thousands);
    the rare anomaly class is the change."""
    from river import datasets

    rows, ys = zip(*datasets.Shuttle(), strict=True)
    x = pd.DataFrame(list(rows)).astype(float)
    x.columns = [f"f{i}" for i in range(x.shape[1])]
    return RealData("river Shuttle", x, np.asarray(ys, dtype=int), 1)


#: name -> loader; every one ships inside an installed package (no download).
DATASETS: dict[str, Callable[[], RealData]] = {
    "sklearn wine": _sklearn("wine"),
    "sklearn breast_cancer": _sklearn("breast_cancer"),
    "sklearn digits": _sklearn("digits"),
    "river ImageSegments": _image_segments,
    "river Shuttle": _shuttle,
}


def load(name: str) -> RealData:
    """One of :data:`DATASETS`."""
    return DATASETS[name]()


def _split(data: RealData, seed: int, ref_rows: int = 2000) -> tuple[dict, pd.DataFrame,
                                                                        pd.DataFrame, Any]:
    """Card, resampled reference, the stationary half, and the fitted model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    sub = np.flatnonzero(data.y != data.held_out)
    rng.shuffle(sub)
    half = sub.size // 2
    ref_idx, live_idx = sub[:half], sub[half:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(data.x.to_numpy(), data.y)  # trained on every class, as in production
    ref = data.x.iloc[rng.choice(ref_idx, size=ref_rows, replace=True)].reset_index(drop=True)
    ref["__prediction__"] = model.predict(ref[data.x.columns].to_numpy())
    card = {"task": "classification", "class_labels": sorted(set(data.y.tolist())),
            "metrics": {},
            "features": [{"name": c, "kind": "numeric"} for c in data.x.columns]}
    return card, ref, data.x.iloc[live_idx].reset_index(drop=True), model


def _records(x: pd.DataFrame, model: Any, start: int = 0) -> list[tuple]:
    names = list(x.columns)
    pred = model.predict(x.to_numpy())
    return [(f"r{start + i}", dict(zip(names, row, strict=True)), pred[i].item(),
             float(start + i)) for i, row in enumerate(x.to_numpy().tolist())]


def _adwin(x: np.ndarray, after: int) -> tuple[int, int | None]:
    """ADWIN on every raw feature: alarms before ``after``, first alarm at or after it."""
    alarms, first = 0, None
    for j in range(x.shape[1]):
        det = drift.ADWIN()
        for i, v in enumerate(x[:, j].tolist()):
            det.update(v)
            if det.drift_detected:
                if i < after:
                    alarms += 1
                elif first is None or i - after < first:
                    first = i - after
                    break
    return alarms, first


@dataclass
class Row:
    """Results of one data set and detector."""

    records: int = 0
    alarms: int = 0
    delays: dict[str, list[int | None]] | None = None


def real_table(
    names: list[str], seeds: list[int], stationary: int, config: MonitorConfig | None = None,
    adwin_records: int = 20_000,
) -> dict[tuple[str, str], Row]:
    """False alarms on ``stationary`` records per seed and delays of the two changes, for
    driftgate and ADWIN (ADWIN's false alarms on the first ``adwin_records``)."""
    out: dict[tuple[str, str], Row] = {}
    for name in names:
        data = load(name)
        moved = next(c for c in data.x.columns  # the first feature that is not one spike
                     if data.x[c].value_counts(normalize=True).iloc[0] < 0.5)
        other = data.x[data.y == data.held_out].reset_index(drop=True)
        for seed in seeds:
            card, ref, live, model = _split(data, seed)
            rng = np.random.default_rng(seed + 1000)
            base = ModelMonitor(card, ref, config or MonitorConfig(seed=seed)).snapshot()
            mon = ModelMonitor.restore(base)
            row = out.setdefault((name, "driftgate"), Row(delays={}))
            draws = live.iloc[rng.integers(0, len(live), stationary)].reset_index(drop=True)
            for s in range(0, stationary, 5000):
                events = mon.update_many(_records(draws.iloc[s : s + 5000], model, s))
                row.alarms += sum(e.kind in DRIFT_KINDS for e in events)
            row.alarms += sum(max(d.alarms - d.episodes, 0) for d in mon.drift.values())
            row.records += stationary
            ad = out.setdefault((name, "river ADWIN()"), Row(delays={}))
            n_ad = min(adwin_records, stationary)
            a, _ = _adwin(draws.iloc[:n_ad].to_numpy(), n_ad)
            ad.alarms += a
            ad.records += n_ad
            for change in ("class arrives", "feature +1 sd"):
                pre = live.iloc[rng.integers(0, len(live), WARMUP)]
                post = live.iloc[rng.integers(0, len(live), HORIZON)].reset_index(drop=True)
                if change == "class arrives":
                    mix = rng.random(HORIZON) < 0.5
                    repl = other.iloc[rng.integers(0, len(other), int(mix.sum()))]
                    post.loc[mix] = repl.to_numpy()
                else:
                    post[moved] = post[moved] + ref[moved].std()
                stream = pd.concat([pre, post], ignore_index=True)
                mon = ModelMonitor.restore(base)
                recs = _records(stream, model)
                mon.update_many(recs[:WARMUP])
                for st in mon.drift.values():
                    st.active = False
                first = next((int(e.record_id[1:]) - WARMUP
                              for e in mon.update_many(recs[WARMUP:])
                              if e.kind in DRIFT_KINDS), None)
                assert row.delays is not None and ad.delays is not None
                row.delays.setdefault(change, []).append(first)
                ad.delays.setdefault(change, []).append(_adwin(stream.to_numpy(), WARMUP)[1])
    return out


def print_real_table(rows: dict[tuple[str, str], Row], seeds: int) -> None:
    """The table ``python -m monitoring.benchmark`` prints."""
    print(f"{'data set':24s} {'detector':16s} {'alarms/100k':>12s} {'records':>9s} "
          f"{'class arrives: rate, median':>28s} {'feature +1 sd: rate, median':>28s}")
    for (name, det), r in rows.items():
        cells = []
        for change in ("class arrives", "feature +1 sd"):
            ds = (r.delays or {}).get(change, [])
            hit = [d for d in ds if d is not None]
            med = f"{np.median(hit):.0f}" if hit else "-"
            cells.append(f"{len(hit) / max(len(ds), 1):.2f}, {med}")
        fa = r.alarms / max(r.records, 1) * 100_000
        print(f"{name:24s} {det:16s} {fa:12.2f} {r.records:9,d} {cells[0]:>28s} "
              f"{cells[1]:>28s}")
    print(f"({seeds} seeds per data set; delays in records after the change)")
