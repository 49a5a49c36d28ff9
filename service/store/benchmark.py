"""Benchmark of the group-commit writer: ``python -m service.store.benchmark``.

Simulates gateway requests: ``--concurrency`` asyncio tasks each submit one record per
"request" in a loop for ``--seconds``; prints records/s and the latency submit adds (p50,
p99) for durable and async mode on SQLite (synchronous NORMAL and FULL) and PostgreSQL
(a throwaway database), side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.store.factory import open_store
from service.store.records import PredictionRecord
from service.store.writer import GroupCommitWriter

FEATURES = {f"f{i}": float(i) * 0.5 for i in range(10)}


def _record() -> PredictionRecord:
    return PredictionRecord(
        model="bench", version="1", features=FEATURES, prediction="yes",
        probabilities={"no": 0.3, "yes": 0.7}, latency_ms=1.0,
    )  # fmt: skip


async def _run(
    url: str, mode: str, concurrency: int, seconds: float, rate: float
) -> dict[str, float]:
    store = open_store(url)
    sizes: list[int] = []
    writer = GroupCommitWriter(store, mode, on_commit=lambda s, n: sizes.append(n))  # type: ignore[arg-type]
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    interval = concurrency / rate if rate > 0 else 0.0

    async def client(i: int) -> None:
        due = time.perf_counter() + interval * i / concurrency
        while time.perf_counter() < stop:
            if interval:  # open loop at the target rate
                due += interval
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            record = _record()
            t0 = time.perf_counter()
            await writer.submit([record])
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0)  # a real request yields to the loop elsewhere too

    start, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    await writer.close()  # async mode: include the final flush in the elapsed time
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    store.close()
    q = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "commits": len(sizes),
        "batch": statistics.mean(sizes) if sizes else 0.0,
        "cpu_us": cpu / len(latencies) * 1e6,
    }


@contextmanager
def _pg_database(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"driftgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_dsn.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rates",
        default="0,1500",
        help="comma-separated total request rates; 0 = closed loop (as fast as possible)",
    )
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin DSN used to create a throwaway database ('' to skip)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, _maybe_pg_database(args.pg) as pg:
        backends: list[tuple[str, Callable[[str], str]]] = [
            ("sqlite (sync=NORMAL)", lambda m: f"sqlite:///{Path(tmp) / f'n-{m}.db'}"),
            (
                "sqlite (sync=FULL)",
                lambda m: f"sqlite:///{Path(tmp) / f'f-{m}.db'}?synchronous=full",
            ),
        ]
        if pg:
            backends.append(("postgresql", lambda m: pg))
        header = (
            f"{'backend':21} {'mode':8} {'target/s':>8} {'records/s':>10} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'commits':>8} {'avg batch':>9} {'cpu us/rec':>10}"
        )
        print(f"{args.concurrency} concurrent submitters, 1 record per request, "
              f"{args.seconds:g}s per row; target 0 = as fast as possible")  # fmt: skip
        print(header)
        for rate in (float(x) for x in args.rates.split(",")):
            for label, url_for in backends:
                for mode in ("durable", "async"):
                    url = url_for(mode)
                    r = asyncio.run(_run(url, mode, args.concurrency, args.seconds, rate))
                    print(
                        f"{label:21} {mode:8} {rate:8.0f} {r['rps']:10.0f} {r['p50_ms']:8.3f} "
                        f"{r['p99_ms']:8.3f} {r['commits']:8.0f} {r['batch']:9.1f} "
                        f"{r['cpu_us']:10.1f}",
                        flush=True,
                    )


@contextmanager
def _maybe_pg_database(admin_dsn: str) -> Iterator[str | None]:
    if not admin_dsn:
        yield None
        return
    with _pg_database(admin_dsn) as dsn:
        yield dsn


if __name__ == "__main__":
    main()
