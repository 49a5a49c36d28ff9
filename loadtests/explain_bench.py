"""Explanation latency and the monitor's throughput with attribution sampling on and off.

    python -m loadtests.explain_bench [--records 20000] [--calls 300]

Registers (in a private, temporary BentoML home) a 100-tree random forest on 30 features
(TreeSHAP) and two non-tree models on the same data: a ridge regression (linear explainer)
and a small neural network (permutation explainer), then

1. explains one row per call, as ``POST /explain`` and ``GET /predictions/{id}/explanation``
   do (without HTTP), and prints p50 / p99 latency per model;
2. fills a fresh SQLite log with ``--records`` records of the forest and times a
   :class:`MonitorRunner` consuming it with attribution off and with the default (budgeted)
   sample rate (interleaved, ``--repeats`` times each, medians), and over the first
   ``--every-records`` records with every record explained; prints records per second and
   the ratio to the gateway's one-row write rate (``--gateway-rate``, rows/s; the bar is 10x).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="driftgate-explain-bench-"))

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402

from models.registry import RegisteredModel, register_model  # noqa: E402
from monitoring import MonitorConfig  # noqa: E402
from service.attribution_stream import AttributionStream  # noqa: E402
from service.explaining import Explainers, explain_frame  # noqa: E402
from service.metrics import monitor_metrics  # noqa: E402
from service.monitor_runner import MonitorRunner  # noqa: E402
from service.store.factory import open_store  # noqa: E402
from service.store.records import PredictionRecord  # noqa: E402

FEATURES = 30
GATEWAY_ROWS_PER_SECOND = 1250.0  # DESIGN.md: bare BentoML, one-row requests, 2 cores


def data(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, FEATURES)),
                     columns=[f"x{i:02d}" for i in range(FEATURES)])
    weights = np.linspace(3.0, 0.0, FEATURES)
    y = X.to_numpy() @ weights + X["x00"] * X["x01"] + 0.3 * rng.standard_normal(n)
    return X, pd.Series(y, name="y")


def register() -> dict[str, RegisteredModel]:
    X, y = data(3000)
    held, held_y = data(1000, seed=1)
    models = {
        "bench-forest": RandomForestRegressor(n_estimators=100, max_depth=10, n_jobs=1,
                                              random_state=0),
        "bench-ridge": Ridge(alpha=1.0),
        "bench-mlp": MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0),
    }
    out = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X.to_numpy(), y)
        out[name] = register_model(name, model, X, y, reference=held, reference_target=held_y)
        info = out[name].card.explainer
        print(f"registered {name}: explainer {info.method if info else None}, baseline of "
              f"{info.baseline_rows if info else 0} rows, {time.perf_counter() - started:.1f} s")
    return out


def latency(entry: RegisteredModel, calls: int) -> tuple[float, float, str]:
    explainer = Explainers().get(entry)
    rows = entry.reference()[entry.card.feature_names].to_dict("records")
    names = entry.card.feature_names
    explainer.explain(explain_frame(rows[:1], names))  # warm
    times = []
    for i in range(calls):
        frame = explain_frame([rows[i % len(rows)]], names)
        started = time.perf_counter()
        explainer.explain(frame)
        times.append(time.perf_counter() - started)
    p50, p99 = np.percentile(times, [50, 99]) * 1000.0
    return float(p50), float(p99), explainer.describe()["method"]


def fill(url: str, entry: RegisteredModel, n: int) -> None:
    ref = entry.reference()
    rows = ref[entry.card.feature_names].to_dict("records")
    predictions = ref["__prediction__"].tolist()
    store = open_store(url)
    try:
        for start in range(0, n, 5000):
            store.append([PredictionRecord(model=entry.name, version=entry.version,
                                           features=rows[i % len(rows)],
                                           prediction=predictions[i % len(rows)])
                          for i in range(start, min(n, start + 5000))])
    finally:
        store.close()


def consume(url: str, entry: RegisteredModel, attribution: AttributionStream | None,
            limit: int | None = None) -> tuple[int, float, float | None]:
    store = open_store(url)
    try:
        runner = MonitorRunner(store, MonitorConfig(quality_events=False),
                               monitor_metrics(CollectorRegistry()),
                               batch=min(5000, limit or 5000), fresh=True,
                               attribution=attribution)
        runner.monitor_for(entry.name, entry.version)  # calibration is start-up work
        rate = None
        if attribution is not None:
            rate = attribution._version(entry.name, entry.version).rate
        started = time.perf_counter()
        total = 0
        while (limit is None or total < limit) and (result := runner.step()).records:
            total += result.records
        return total, time.perf_counter() - started, rate
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.explain_bench")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300, help="one-row explanations per model")
    parser.add_argument("--gateway-rate", type=float, default=GATEWAY_ROWS_PER_SECOND)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each")
    parser.add_argument("--every-records", type=int, default=500,
                        help="records timed with every record explained")
    args = parser.parse_args(argv)
    models = register()
    print("\nexplanation latency, one row per call:")
    for name, entry in models.items():
        calls = args.calls if name != "bench-mlp" else max(20, args.calls // 10)
        p50, p99, method = latency(entry, calls)
        print(f"  {name:13s} {method:12s} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  ({calls} calls)")
    forest = models["bench-forest"]
    url = str(Path(tempfile.mkdtemp(prefix="driftgate-explain-bench-")) / "log.sqlite3")
    fill(url, forest, args.records)
    print(f"\nmonitor throughput, {args.records} records of {forest.name} (SQLite), "
          f"gateway one-row write rate taken as {args.gateway_rate:,.0f} rows/s:")
    results: dict[str, list[float]] = {"attribution off": [], "default sampling": []}
    rate = None
    for _ in range(args.repeats):  # interleaved, so the machine's noise hits both alike
        for label in results:
            stream = AttributionStream() if label == "default sampling" else None
            total, seconds, found = consume(url, forest, stream)
            rate = found if found is not None else rate
            results[label].append(total / seconds)
    off = float(np.median(results["attribution off"]))
    for label, values in results.items():
        median = float(np.median(values))
        extra = f", sample rate {rate:.4f}" if label == "default sampling" else ""
        print(f"  {label:17s} median {median:8,.0f} records/s over {len(values)} runs "
              f"({median / off:.2f}x off, {median / args.gateway_rate:.1f}x the gateway){extra}"
              f"  runs: {', '.join(f'{v:,.0f}' for v in values)}")
    total, seconds, _ = consume(url, forest, AttributionStream(sample_rate=1.0),
                                limit=args.every_records)
    print(f"  every record      {total / seconds:8,.0f} records/s over the first {total} "
          f"records ({total / seconds / off:.3f}x off): why the rate is budgeted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
