"""Benchmark: river's default detectors vs driftgate's calibrated monitor on seeded streams.

Run ``python -m monitoring.benchmark`` (``--quick`` for a smoke run). Prints false alarms per
100,000 stationary predictions, detection rate and median delay (with a distribution-free 95%
confidence interval) for several drifts, and the cost per record. Reference samples have 2,000
rows; every repetition draws a fresh reference and fresh live streams from the same population,
so the reference's sampling error is part of the measurement. The driftgate rows use 200
references with 5 live streams each: a median delay from 200 runs still moved by up to 5
records between seeds for the 0.5 sd shift, too coarse for a target of 80.

Yardstick for the 0.5 sd target: the best CUSUM for that shift on Gaussian data, holding the
whole false-alarm budget of a 5-feature model on its 10 mean charts and nothing for variance,
joint or prediction charts, has a median delay of 75 when the population's mean and sd are
known and 79 when they come from a 2,000-row reference and the threshold covers that
uncertainty (as the issue requires the calibration to): :func:`ideal_cusum_delays`, printed
below the table. A median of 80 at 1 false alarm per 100,000 is therefore the bound itself,
not a margin above it.

Why a gradual 0 -> 1 sd ramp over 2,000 records cannot be caught within 500 records at this
false-alarm rate: a record ``t`` records into the ramp carries ``mu_t**2 / 2`` nats of evidence
(Kullback-Leibler divergence of ``N(mu_t, 1)`` from ``N(0, 1)``, ``mu_t = t / 2000``), so the
first ``T`` records carry ``sum mu_t**2 / 2 ~= T**3 / 2.4e7`` nats: 5.2 nats at ``T = 500``
(where the mean is only 0.25 sd), 14.3 at ``T = 700``. A one-sided mean chart holding a false
alarm budget of ``alpha ~= 5e-7`` per record must see its log-likelihood ratio climb by about
``ln(1 / alpha) ~= 14.5`` nats before it may fire; even the Neyman-Pearson test that knew the
ramp's start and shape would at ``T = 500`` need a 2.9 sigma excursion of its statistic (mean
5.2, sd ``sqrt(2 * 5.2) = 3.2``), i.e. it fires by then in well under 1% of runs. A median of
500 needs ``ln(1 / alpha) ~= 5``, a budget about 3,000 times larger. The table therefore also
reports the delay counted from the record at which the ramp reaches 0.5 sd and 1 sd (negative:
caught before the ramp got there).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from river import drift

from monitoring.batch import RecordBatch
from monitoring.calibration import log_arl, sampling_grid
from monitoring.config import MonitorConfig
from monitoring.detectors import cusum_kernel
from monitoring.monitor import ModelMonitor

__all__ = ["synthetic_model", "records", "main"]

DRIFT_KINDS = ("feature_drift", "prediction_drift", "multivariate_drift")
CATS = ["a", "b", "c"]
CAT_P = [0.5, 0.3, 0.2]
RHO = 0.8


def _draw(n: int, p: int, rng: np.random.Generator, correlated: bool) -> np.ndarray:
    x = rng.standard_normal((n, p))
    if correlated and p >= 2:
        x[:, 1] = RHO * x[:, 0] + np.sqrt(1 - RHO**2) * x[:, 1]
    return x


def synthetic_model(
    p: int, n_ref: int, rng: np.random.Generator, categorical: bool = False,
    correlated: bool = True,
) -> tuple[dict, pd.DataFrame]:
    """A regression model card and reference: ``p`` standard normal features (x0 and x1
    correlated 0.8), an optional categorical ``c``, prediction ``0.5 * sum(x)``.

    Examples
    --------
    >>> card, ref = synthetic_model(3, 100, np.random.default_rng(0))
    >>> [f["name"] for f in card["features"]], ref.shape
    (['x0', 'x1', 'x2'], (100, 5))
    """
    x = _draw(n_ref, p, rng, correlated)
    names = [f"x{i}" for i in range(p)]
    ref = pd.DataFrame(x, columns=names)
    feats: list[dict[str, Any]] = [
        {"name": n, "kind": "numeric", "dtype": "float64", "min": -8.0, "max": 8.0,
         "categories": None, "nullable": False} for n in names]
    if categorical:
        ref["c"] = rng.choice(CATS, size=n_ref, p=CAT_P)
        feats.append({"name": "c", "kind": "categorical", "dtype": "object", "min": None,
                      "max": None, "categories": CATS, "nullable": False})
    pred = 0.5 * x.sum(axis=1)
    ref["__prediction__"] = pred
    ref["__label__"] = pred + 0.1 * rng.standard_normal(n_ref)
    card = {"name": "synthetic", "task": "regression", "class_labels": None,
            "features": feats, "metrics": {"mae": 0.08}}
    return card, ref


def records(x: np.ndarray, cats: np.ndarray | None = None, start: int = 0) -> list[tuple]:
    """Monitor records from a feature matrix (and optional categories)."""
    names = [f"x{i}" for i in range(x.shape[1])]
    pred = 0.5 * x.sum(axis=1)
    out = []
    for i, row in enumerate(x.tolist()):
        f = dict(zip(names, row, strict=True))
        if cats is not None:
            f["c"] = cats[i]
        out.append((f"r{start + i}", f, float(pred[i]), float(start + i)))
    return out


# --- scenarios: functions (warmup, horizon, rng) -> (features, categories or None) -------------
WARMUP = 500


def _stream(kind: str, p: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = _draw(n, p, rng, True)
    c = rng.choice(CATS, size=n, p=CAT_P)
    post = slice(WARMUP, n)
    m = n - WARMUP
    if kind == "mean_1sd":
        x[post, 2] += 1.0
    elif kind == "mean_0.5sd":
        x[post, 2] += 0.5
    elif kind == "std_x2":
        x[post, 2] *= 2.0
    elif kind == "gradual_0_to_1sd_over_2000":
        x[post, 2] += np.minimum(np.arange(m) / RAMP, 1.0)
    elif kind == "categorical_freq":
        c[post] = rng.choice(CATS, size=m, p=[0.35, 0.3, 0.35])
    elif kind == "joint_corr_broken":
        x[post, 1] = rng.standard_normal(m)
    return x, c


SCENARIOS = {
    "mean_1sd": ("x2", 1000),
    "mean_0.5sd": ("x2", 1000),
    "std_x2": ("x2", 1000),
    "gradual_0_to_1sd_over_2000": ("x2", 2500),
    "categorical_freq": ("c", 2000),
    "joint_corr_broken": (None, 2000),
}


def _river_delay(factory: Callable[[], object], x: np.ndarray, c: np.ndarray | None,
                 target: str | None) -> int | None:
    """First post-change alarm of river detectors on the raw target stream(s)."""
    if target == "c":
        streams = [np.asarray(c == k, dtype=float) for k in CATS]
    elif target is None:
        streams = [x[:, j] for j in range(x.shape[1])]
    else:
        streams = [x[:, int(target[1:])]]
    first: int | None = None
    for s in streams:
        det = factory()
        for i, v in enumerate(s.tolist()):
            det.update(v)  # type: ignore[attr-defined]
            if det.drift_detected and i >= WARMUP:  # type: ignore[attr-defined]
                first = i - WARMUP if first is None else min(first, i - WARMUP)
                break
    return first


def _dg_delay(
    mon: ModelMonitor, x: np.ndarray, c: np.ndarray | None, target: str | None
) -> int | None:
    recs = records(x, c)
    mon.update_many(recs[:WARMUP])
    for st in mon.drift.values():  # measure the change, not an episode opened before it
        st.active = False
    for e in mon.update_many(recs[WARMUP:]):
        if e.kind not in DRIFT_KINDS:
            continue
        i = int(e.record_id[1:])
        if i < WARMUP:
            continue
        if target is None or e.feature == target:
            return i - WARMUP
    return None


RIVER: dict[str, Callable[[], object]] = {
    "river ADWIN()": drift.ADWIN,
    "river PageHinkley()": drift.PageHinkley,
    "river KSWIN()": lambda: drift.KSWIN(seed=1),
}


RAMP = 2000  # records of the gradual scenario's 0 -> 1 sd ramp


def detection_table(reps: int, seed: int, river_reps: int, streams: int = 1) -> list[tuple]:
    """Detection rate, median delay (with a 95% confidence interval) and runs per detector and
    scenario: ``reps`` references, ``streams`` live streams per reference and scenario."""
    rows = []
    rng = np.random.default_rng(seed)
    p = 5
    delays: dict[tuple[str, str], list[int | None]] = {}
    for r in range(reps):
        # The targets are for a model with 5 numeric features; the categorical
        # scenario adds a categorical feature (which takes a share of the budget).
        bases = {}
        for categorical in (False, True):
            card, ref = synthetic_model(p, 2000, rng, categorical=categorical)
            bases[categorical] = ModelMonitor(
                card, ref, MonitorConfig(seed=seed + r)).snapshot()
        for kind, (target, horizon) in SCENARIOS.items():
            categorical = target == "c"
            for _ in range(streams):
                x, c = _stream(kind, p, WARMUP + horizon, rng)
                mon = ModelMonitor.restore(bases[categorical])
                delays.setdefault(("driftgate cusum", kind), []).append(
                    _dg_delay(mon, x, c if categorical else None, target))
            if r < river_reps:  # on the last stream
                for name, fac in RIVER.items():
                    if name.endswith("KSWIN()") and r >= max(river_reps // 4, 2):
                        continue
                    delays.setdefault((name, kind), []).append(
                        _river_delay(fac, x, c, target))
    for (det, kind), ds in list(delays.items()):
        if kind.startswith("gradual"):  # the same runs, delay counted from 0.5 sd and 1 sd
            for level in (0.5, 1.0):
                delays[(det, f"{kind} from {level:g}sd")] = [
                    None if d is None else d - int(level * RAMP) for d in ds]
    for (det, kind), ds in delays.items():
        hit = [d for d in ds if d is not None]
        rows.append((det, kind, len(hit) / len(ds), float(np.median(hit)) if hit else None,
                     median_ci(hit), len(ds)))
    return rows


def median_ci(values: list[int]) -> tuple[float, float] | None:
    """Distribution-free 95% confidence interval of a median (binomial order statistics).

    Examples
    --------
    >>> median_ci(list(range(1, 101)))
    (41, 61)
    """
    n = len(values)
    if n < 10:
        return None
    v = sorted(values)
    half = 1.96 * math.sqrt(n) / 2.0
    return v[max(int(math.floor(n / 2 - half)), 0)], v[min(int(math.ceil(n / 2 + half)), n - 1)]


def false_alarms(p: int, n: int, reps: int, seed: int) -> tuple[float, float]:
    """driftgate drift alarms per 100,000 stationary records (fresh reference each rep)."""
    rng = np.random.default_rng(seed)
    total = 0
    t_cal = 0.0
    for r in range(reps):
        card, ref = synthetic_model(p, 2000, rng)
        t0 = time.perf_counter()
        mon = ModelMonitor(card, ref, MonitorConfig(seed=seed + r, stats_every=10**9))
        t_cal += time.perf_counter() - t0
        for start in range(0, n, 20_000):
            x = _draw(min(20_000, n - start), p, rng, True)
            for e in mon.update_many(records(x, start=start)):
                total += e.kind in DRIFT_KINDS
        total += 0
        # count re-alarms inside an episode too: every alarm is a false alarm here
        total += sum(max(d.alarms - d.episodes, 0) for d in mon.drift.values())
    return total / (reps * n) * 100_000, t_cal / reps


def river_false_alarms(factory: Callable[[], object], p: int, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    alarms = 0
    for j in range(p):
        det = factory()
        for v in x[:, j].tolist():
            det.update(v)  # type: ignore[attr-defined]
            alarms += det.drift_detected  # type: ignore[attr-defined]
    return alarms / n * 100_000


def cost(p: int, n: int, seed: int, batch: int) -> float:
    rng = np.random.default_rng(seed)
    card, ref = synthetic_model(p, 2000, rng)
    mon = ModelMonitor(card, ref, MonitorConfig(seed=seed))
    recs = records(_draw(n, p, rng, True))
    t0 = time.perf_counter()
    if batch == 1:
        for r in recs:
            mon.update(*r)
    else:
        for i in range(0, n, batch):
            mon.update_many(recs[i : i + batch])
    return (time.perf_counter() - t0) / n * 1e6


def sustained_cost(
    p: int, n: int, seed: int, batch: int, columnar: bool = False
) -> tuple[float, float]:
    """Cost per record (us) of ``update_many`` (row records; ``columnar``: ``update_batch``
    on columns, as the gateway's monitor reads the log) in ``batch``-record batches on ``n``
    stationary records, then on ``n`` records with every feature shifted by 1 sd (every chart
    firing again and again), one monitor, same run: ``(stationary, sustained drift)``. The
    CUSUM kernel is compiled before timing (once per process)."""
    cusum_kernel.warm_up()
    rng = np.random.default_rng(seed)
    card, ref = synthetic_model(p, 2000, rng)
    mon = ModelMonitor(card, ref, MonitorConfig(seed=seed))
    x = _draw(2 * n, p, rng, True)
    x[n:] += 1.0
    recs = records(x)
    out = []
    feed: Callable[[Any], Any] = mon.update_batch if columnar else mon.update_many
    for part in (recs[:n], recs[n:]):
        chunks = [part[i : i + batch] for i in range(0, n, batch)]
        batches = [RecordBatch.from_records(c) for c in chunks] if columnar else chunks
        t0 = time.perf_counter()
        for b in batches:
            feed(b)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out[0], out[1]


def labels_only(seed: int) -> tuple[int, int | None]:
    """Only labels change: (feature/prediction drift alarms, concept-drift delay)."""
    rng = np.random.default_rng(seed)
    card, ref = synthetic_model(5, 2000, rng)
    mon = ModelMonitor(card, ref, MonitorConfig(seed=seed))
    x = _draw(3000, 5, rng, True)
    drift_events = 0
    delay = None
    for i, rec in enumerate(records(x)):
        drift_events += sum(e.kind in DRIFT_KINDS for e in mon.update(*rec))
        label = rec[2] + 0.1 * rng.standard_normal() + (0.5 if i >= 1000 else 0.0)
        for e in mon.update_label(rec[0], rec[2], label, rec[3]):
            if e.kind == "concept_drift" and i >= 1000 and delay is None:
                delay = i - 1000
    return drift_events, delay


def ideal_cusum_delays(
    shift: float, rate: float, n_ref: int | None, runs: int, rng: np.random.Generator
) -> list[int | None]:
    """Delays of the best single CUSUM for a known ``shift`` on Gaussian data, as a yardstick.

    The chart has ``k = shift / 2`` (optimal for that shift) and a threshold for ``rate`` false
    alarms per record. ``n_ref=None``: the population's mean and sd are known. Otherwise live
    values are standardised with the statistics of an ``n_ref``-row reference and the
    threshold holds ``rate`` on average over references (as driftgate's calibration does):
    the same bound with the reference uncertainty the issue asks the calibration to cover.
    Pre-change records ``WARMUP``, as in :func:`detection_table`.

    Examples
    --------
    >>> d = ideal_cusum_delays(1.0, 1e-6, None, 400, np.random.default_rng(0))
    >>> 20 < float(np.median(d)) < 35
    True
    """
    k = shift / 2.0
    if n_ref is None:
        m, sd, w = np.zeros(1), np.ones(1), np.ones(1)
    else:  # reference mean ~ N(0, 1/n), log sd ~ N(0, 1/(2n)) for Gaussian data
        m, sd, w = sampling_grid(0.0, 1.0 / math.sqrt(n_ref), 1.0,
                                 1.0 / math.sqrt(2 * n_ref), 20, 6)
    # live z = (x - m) / sd with x ~ N(0, 1): increments z - k ~ N(-m/sd - k, 1/sd**2)
    drift_in, sd_in = -m / sd - k, 1.0 / sd
    theta = -2.0 * drift_in / sd_in**2

    def log_avg_rate(h: float) -> float:
        lr = -log_arl(theta, h + 1.166 * sd_in)
        return float(np.log(np.sum(w * np.exp(lr - lr.max()))) + lr.max())

    lo, hi = 0.0, 200.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if log_avg_rate(mid) > math.log(rate) else (lo, mid)
    h = hi
    if n_ref is None:
        mean, scale = np.zeros(runs), np.ones(runs)
    else:
        mean = rng.standard_normal(runs) / math.sqrt(n_ref)
        scale = np.exp(rng.standard_normal(runs) / math.sqrt(2 * n_ref))
    s = np.zeros(runs)
    for _ in range(WARMUP):
        s = np.maximum(0.0, s + (rng.standard_normal(runs) - mean) / scale - k)
        s[s > h] = 0.0  # a false alarm restarts the chart
    delays: list[int | None] = [None] * runs
    alive = np.ones(runs, dtype=bool)
    for t in range(1000):
        s = np.maximum(0.0, s + (rng.standard_normal(runs) + shift - mean) / scale - k)
        hit = alive & (s > h)
        for i in np.flatnonzero(hit):
            delays[i] = t
        alive &= ~hit
        if not alive.any():
            break
    return delays


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="small run (a few minutes; the real-data part calibrates 10 models)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    q = a.quick
    t_start = time.perf_counter()
    print("driftgate monitoring benchmark (reference 2,000 rows, ERT 100,000, seeded)\n")
    print("== False alarms per 100,000 stationary predictions ==")
    print(f"{'detector':28s} {'features':>8s} {'alarms/100k':>12s}  note")
    n_fa5, reps5 = (100_000, 2) if q else (100_000, 100)
    fa5, cal5 = false_alarms(5, n_fa5, reps5, a.seed)
    print(f"{'driftgate cusum':28s} {5:8d} {fa5:12.2f}  {reps5} x 100k, calib {cal5:.2f}s")
    reps30 = 1 if q else 10
    fa30, cal30 = false_alarms(30, 100_000, reps30, a.seed + 1)
    print(f"{'driftgate cusum':28s} {30:8d} {fa30:12.2f}  {reps30} x 100k, "
          f"calib {cal30:.2f}s")
    n_r = 20_000 if q else 100_000
    for name, fac, n, pp in [("river PageHinkley()", drift.PageHinkley, n_r, 30),
                             ("river ADWIN()", drift.ADWIN, n_r // 2, 30),
                             ("river KSWIN()", RIVER["river KSWIN()"], 2_000, 5)]:
        v = river_false_alarms(fac, pp, n, a.seed) * 30 / pp
        print(f"{name:28s} {30:8d} {v:12.1f}  measured on {n:,} x {pp} features, scaled")
    print("\n== Detection (5 numeric features; + 1 categorical for categorical_freq; "
          "change at record 500) ==")
    reps, streams = (6, 1) if q else (200, 5)
    rows = detection_table(reps, a.seed, river_reps=3 if q else 12, streams=streams)
    print(f"{'detector':22s} {'scenario':38s} {'rate':>6s} {'median delay':>13s} "
          f"{'95% CI':>12s} {'runs':>5s}")
    for det, kind, rate, med, ci, n in sorted(rows, key=lambda r: (r[1], r[0])):
        md = "-" if med is None else f"{med:.0f}"
        cis = "" if ci is None else f"[{ci[0]}, {ci[1]}]"
        print(f"{det:22s} {kind:38s} {rate:6.2f} {md:>13s} {cis:>12s} {n:5d}")
    print("\nYardstick: the best CUSUM for the shift (k = shift / 2, Gaussian data), the whole "
          "budget of a 5-feature model\non its 10 mean charts (1e-6 false alarms per record "
          "each), no variance, joint or prediction charts:")
    rng = np.random.default_rng(a.seed)
    for shift in (0.5, 1.0):
        for n_ref, label in ((None, "population known"), (2000, "2,000-row reference")):
            d = ideal_cusum_delays(shift, 1e-6, n_ref, 400 if q else 4000, rng)
            hit = [v for v in d if v is not None]
            ci = median_ci(hit)
            print(f"  +{shift:g} sd, {label:20s} median delay {np.median(hit):5.0f} "
                  f"[{ci[0]}, {ci[1]}]" if ci else "")
    ev, dl = labels_only(a.seed)
    print(f"\nlabels-only change (+0.5 shift of the target): drift alarms on features/prediction "
          f"= {ev}, concept drift delay = {dl}")
    print("\n== Cost per record (microseconds) ==")
    for p in (5, 30):
        n = 20_000 if q else 50_000
        print(f"{p:2d} features: update_many(batch=1000) {cost(p, n, a.seed, 1000):7.2f} us,"
              f"  update() {cost(p, 2_000 if q else 5_000, a.seed, 1):7.1f} us")
    seeds, n_real = (2, 5_000) if q else (5, 20_000)
    print(f"\n== Real data (reference: half a subpopulation resampled to 2,000 rows; "
          f"{seeds} seeds x {n_real:,} stationary records) ==")
    from monitoring.benchmark_real import DATASETS, print_real_table, real_table

    print_real_table(real_table(list(DATASETS), list(range(seeds)), n_real), seeds)
    for columnar, label in ((False, "row records"), (True, "columns")):
        st, dr = sustained_cost(30, 10_000 if q else 50_000, a.seed, 5000, columnar)
        print(f"30 features, batches of 5,000 {label:>11}: stationary {st:6.2f} us, sustained"
              f" 1 sd drift on every feature {dr:6.2f} us ({dr / st:.2f}x)")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
