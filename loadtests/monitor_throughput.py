"""How fast the monitor consumes the prediction log, against how fast the gateway writes it.

    python -m loadtests.monitor_throughput [--records 100000] [--model diabetes] [--postgres]
                                           [--rows-per-request 64] [--explain]
                                           [--explain-budget US]

Fills a fresh log (SQLite in a temp dir, or a throwaway PostgreSQL database) with records drawn
from the model's reference sample, then times a :class:`MonitorRunner` reading it from offset
0 in batches, as the Monitor service does (detectors, events, metrics into a private
registry; with ``--explain`` also the attribution stream the Monitor service builds from
its settings, which it runs by default; ``--explain-budget`` sets its budget, microseconds of
explaining per logged record, as ``DRIFTGATE_EXPLAIN_BUDGET_US`` does). Prints records per
second and how many records were explained; compare with the gateway's write rate from
``python -m loadtests.bench`` (rows/s column). The quality bar is at least 10x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from loadtests.bench import DEFAULT_PG, create_pg_database, drop_pg_database
from models.demo import register_demo_models
from models.registry import get_model
from monitoring import MonitorConfig
from monitoring.detectors import cusum_kernel
from service.attribution_stream import AttributionStream, attribution_stream
from service.config import Settings
from service.metrics import monitor_metrics
from service.monitor_node import METRICS_EVERY_SECONDS
from service.monitor_runner import MonitorRunner
from service.store.blocks import RecordBlock
from service.store.factory import open_store
from service.store.records import new_prediction_ids
from service.tail_latency import freeze_startup_objects


def fill(store_url: str, model: str, n: int, rows_per_request: int) -> None:
    """``n`` records of reference rows, logged as the gateway logs requests of
    ``rows_per_request`` rows (one block each), 5,000 records per commit."""
    entry = get_model(model)
    ref = entry.reference()
    names = entry.card.feature_names
    columns = {name: ref[name].tolist() for name in names}
    predictions = ref["__prediction__"].tolist()
    size = len(predictions)
    store = open_store(store_url)
    try:
        pending: list[RecordBlock] = []
        queued = 0
        for start in range(0, n, rows_per_request):
            picks = [i % size for i in range(start, min(n, start + rows_per_request))]
            pending.append(RecordBlock(
                model, entry.version, "default", time.time(), new_prediction_ids(len(picks)),
                {name: [columns[name][i] for i in picks] for name in names},
                [predictions[i] for i in picks], latency_ms=1.0, request_id=str(start)))
            queued += len(picks)
            if queued >= 5000:
                store.append(pending)
                pending, queued = [], 0
        store.append(pending)
    finally:
        store.close()


def explaining(explain: bool, budget_us: float | None) -> AttributionStream | None:
    """The Monitor service's attribution stream, built from its settings as the service
    builds it (None: no explaining); ``budget_us`` sets the budget and samples by it."""
    if budget_us is not None:
        return attribution_stream(Settings(explain_budget_us=budget_us, explain_sample_rate=None))
    return attribution_stream(Settings()) if explain else None


def consume(store_url: str, model: str, batch: int, attribution: AttributionStream | None
            ) -> tuple[int, float]:
    """Records consumed and seconds taken."""
    store = open_store(store_url)
    try:
        runner = MonitorRunner(store, MonitorConfig(quality_events=False),
                               monitor_metrics(CollectorRegistry()), batch=batch,
                               attribution=attribution,
                               metrics_every=METRICS_EVERY_SECONDS)  # as the service does
        version = get_model(model).version
        runner.monitor_for(model, version)  # calibration is start-up work
        if runner.attribution is not None:  # so is measuring the explainer's cost
            runner.attribution.process_blocks(model, version, [])
        cusum_kernel.warm_up()  # compiled (or loaded from numba's cache) at start, likewise
        freeze_startup_objects()  # as the Monitor service does once its monitors are built
        started = time.perf_counter()
        total = 0
        while (result := runner.step()).records:
            total += result.records
        return total, time.perf_counter() - started
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.monitor_throughput")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--model", default="diabetes")
    parser.add_argument("--batch", type=int, default=5_000, help="records per monitor step")
    parser.add_argument("--rows-per-request", type=int, default=64,
                        help="rows of each logged request (one block each)")
    parser.add_argument("--explain", action="store_true",
                        help="also explain records (attribution drift) at the default budget")
    parser.add_argument("--explain-budget", type=float, metavar="US",
                        help="explain within this many microseconds per logged record "
                        "(implies --explain)")
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_PG, metavar="ADMIN_DSN",
                        help="use a throwaway database created (and dropped) there")
    args = parser.parse_args(argv)
    register_demo_models(only_missing=True)
    database = None
    if args.postgres:
        database, url = create_pg_database(args.postgres)
    else:
        url = str(Path(tempfile.mkdtemp(prefix="driftgate-monitor-")) / "log.sqlite3")
    try:
        fill(url, args.model, args.records, args.rows_per_request)
        attribution = explaining(args.explain, args.explain_budget)
        total, seconds = consume(url, args.model, args.batch, attribution)
    finally:
        if database:
            drop_pg_database(args.postgres, database)
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"monitor ({backend}, {args.model}, {args.rows_per_request} rows per request, "
          f"batch {args.batch}{described(attribution)}): {total} records in "
          f"{seconds:.2f} s = {total / seconds:,.0f} records/s ({seconds / total * 1e6:.1f} "
          f"us per record)")
    return 0


def described(attribution: AttributionStream | None) -> str:
    """How the run explained, and how many records it did explain."""
    if attribution is None:
        return ""
    how = (f"at rate {attribution.sample_rate:g}" if attribution.sample_rate is not None
           else f"within {attribution.budget_us:g} us per record")
    explained = sum(state.explained for state in attribution.versions.values())
    return f", explaining {how}: {explained} explained"


if __name__ == "__main__":
    raise SystemExit(main())
