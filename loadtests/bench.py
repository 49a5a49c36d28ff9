"""Side-by-side benchmark: a bare BentoML service vs the full driftgate gateway, same model.

    make bench                                    # = python -m loadtests.bench  (~4 min)
    python -m loadtests.bench --quick             # ~1.5 min
    python -m loadtests.bench --logging-modes     # + logging off / durable / async (~6 min)
    python -m loadtests.bench --logging-modes --postgres          # + PostgreSQL (default DSN)
    python -m loadtests.bench --logging-modes --postgres postgresql://me@db:5432/postgres
    python -m loadtests.bench --auth              # bare, driftgate, driftgate with API keys
    python -m loadtests.bench --fast-route        # bare, driftgate, driftgate without fast route

Both services run at once on 127.0.0.1, each in its own temporary data directory, and wrk
(64 connections, a Lua POST script rotating reference rows of ``diabetes``) drives them in
turns: warm-up, then A, B, A, B, ... for ``--rounds`` rounds of ``--duration`` seconds, first
with one row per request, then with ``--batch`` rows per request. The table shows the median
over rounds of requests/s, p50 and p99 latency and requests per CPU second of the service's
processes, the ratios driftgate/bare, and the monitor lag read from the gateway's /metrics
during and right after each driftgate round (the next round starts once the monitor has
caught up, so a backlog never steals CPU from the other service's round).

The demo models are registered in the BentoML model store (``BENTOML_HOME``) if missing.
wrk is installed with apt-get when absent and we are root. Everything started is stopped on
exit, Ctrl-C and errors; a throwaway PostgreSQL database is dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from loadtests.harness import (
    BENTOML,
    ROOT,
    Server,
    free_port,
    metric_value,
    pg_schema_url,
    private_bentoml_home,
    reference_rows,
    stop_gateway,
)

MODEL = "diabetes"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LAG_RECORDS = "driftgate_monitor_lag_records"
LAG_SECONDS = "driftgate_monitor_lag_seconds"

WRK_SCRIPT = """
local bodies = {%(bodies)s}
local reqs = {}
local i = 0
init = function(args)
  for k, b in ipairs(bodies) do
    reqs[k] = wrk.format("POST", nil, {["Content-Type"] = "application/json"%(headers)s}, b)
  end
  i = math.random(#reqs)
end
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%%d,"requests":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# --- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    """One service under test: how to start it and what to POST to it."""

    key: str
    label: str
    bare: bool = False
    env: dict[str, str] = field(default_factory=dict)
    monitored: bool = False
    baseline: str = "bare"  # the bare target this one is compared with
    server: Server | None = None
    api_key: str | None = None  # created in the gateway's store before it starts; sent

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def path(self) -> str:
        return "/predict"

    def body(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"inputs": rows} if self.bare else {"model": MODEL, "inputs": rows}


def gateway_target(key: str, label: str, store: str, logging: bool = True,
                   durability: str = "durable", tail_fix: bool = True,
                   monitoring: bool = True) -> Target:
    env = {"DRIFTGATE_LOGGING_ENABLED": str(logging).lower(), "DRIFTGATE_DURABILITY": durability,
           "DRIFTGATE_TAIL_LATENCY_FIX": str(tail_fix).lower(),
           "DRIFTGATE_MONITORING_ENABLED": str(monitoring).lower()}
    if store != "sqlite":
        env["DRIFTGATE_STORE_URL"] = store
    return Target(key, label, env=env, monitored=logging and monitoring,
                  baseline="bare" if tail_fix else "bare-stock")


@dataclass
class Launched:
    process: subprocess.Popen
    port: int
    data_dir: Path
    log: Path


def launch(target: Target, data_dir: Path) -> Launched:
    """Start ``bentoml serve`` for the target in its own session (we stop its group)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / f"bentoml-{port}.log"
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true",
           "BENTOML_HOME": private_bentoml_home(data_dir), **target.env}
    if target.bare:
        service = "loadtests.bare_service:BareService"
        env["BARE_MODEL"] = MODEL
    else:
        service = "service.gateway:Gateway"
        config = data_dir / "driftgate.yaml"  # serve the benchmarked model only, like bare
        config.write_text(yaml.safe_dump({"models": {MODEL: {"default": "latest"}}}))
        env |= {"DRIFTGATE_DATA_DIR": str(data_dir), "DRIFTGATE_CONFIG_FILE": str(config)}
        if target.api_key:
            store_key(data_dir / "predictions.sqlite3", target.api_key)
    process = subprocess.Popen(
        [str(BENTOML), "serve", service, "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Launched(process, port, data_dir, log)


def new_api_key() -> str:
    """A predict-scope key for a target (stored by :func:`store_key` at its start)."""
    from service.auth.keys import new_key

    token, _ = new_key(["predict"], models=None, expires_at=None, name="bench", actor="bench",
                       now=time.time())
    return token


def store_key(path: Path, token: str) -> None:
    from service.auth.keys import hash_key, key_id_of
    from service.store.entities import ApiKeyRow
    from service.store.factory import open_store

    key_id = key_id_of(token)
    assert key_id is not None
    store = open_store(path)
    try:
        if key_id not in {k.id for k in store.key_list()}:
            store.key_insert(ApiKeyRow(key_id, hash_key(token), "bench", ["predict"], None,
                                       time.time(), "bench"))
    finally:
        store.close()


def start_all(targets: list[Target], base: Path, started: list[Server],
              timeout: float = 240.0) -> None:
    """Start every target at once and wait until each answers /readyz (one retry each)."""
    pending = {t.key: launch(t, base / t.key) for t in targets}
    for t in targets:
        started.append(_server(pending[t.key]))
    retries = {t.key: 1 for t in targets}
    deadline = time.monotonic() + timeout
    by_key = {t.key: t for t in targets}
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready in {timeout:.0f} s: {sorted(pending)}")
        for key, run in list(pending.items()):
            if run.process.poll() is not None:
                tail = run.log.read_text(errors="replace")[-3000:]
                if not retries[key]:
                    raise RuntimeError(f"{key}: bentoml serve exited:\n{tail}")
                retries[key] -= 1  # most likely a port race: again on a fresh port
                pending[key] = launch(by_key[key], run.data_dir)
                started.append(_server(pending[key]))
                continue
            with suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{run.port}/readyz", timeout=2).status_code == 200:
                    by_key[key].server = _server(run)
                    del pending[key]
        time.sleep(0.5)


def _server(run: Launched) -> Server:
    return Server(f"http://127.0.0.1:{run.port}", run.port, run.data_dir, run.process, run.log)


def check_same_predictions(targets: list[Target], rows: list[dict[str, Any]]) -> str:
    """Every target answers 200 and all give the bare service's predictions."""
    answers = {}
    for t in targets:
        assert t.server is not None
        response = httpx.post(t.server.url + t.path, json=t.body(rows), timeout=30,
                              headers=t.headers)
        if response.status_code != 200:
            raise RuntimeError(f"{t.label}: {response.status_code} {response.text[:500]}")
        data = response.json()
        answers[t.key] = data if t.bare else data["predictions"]
    first = next(iter(answers.values()))
    same = all(
        all(abs(a - b) < 1e-9 for a, b in zip(first, values, strict=True))
        for values in answers.values()
    )
    if not same:
        raise RuntimeError(f"services disagree on the same rows: {answers}")
    return f"all {len(targets)} services return the same predictions for {len(rows)} rows"


# --- wrk ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: apt-get install wrk ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode:
            subprocess.run(["apt-get", "update", "-qq"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk is required: install it with `sudo apt-get install wrk` (Debian/Ubuntu), "
        "`brew install wrk` (macOS), or build it from https://github.com/wg/wrk"
    )


def wrk_script(path: Path, bodies: list[dict[str, Any]],
               headers: dict[str, str] | None = None) -> Path:
    quoted = ",".join(f"[==[{json.dumps(b, separators=(',', ':'))}]==]" for b in bodies)
    extra = "".join(f', ["{k}"] = "{v}"' for k, v in (headers or {}).items())
    path.write_text(WRK_SCRIPT % {"bodies": quoted, "headers": extra})
    return path


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


_RUNNING: list[subprocess.Popen] = []


def run_wrk(wrk: str, url: str, script: Path, seconds: float, connections: int,
            threads: int) -> WrkResult:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), url]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _RUNNING.append(process)
    try:
        out, _ = process.communicate(timeout=seconds + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _RUNNING.remove(process)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if process.returncode or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out[-2000:]}")
    d = json.loads(line[len("WRKJSON "):])
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return WrkResult(d["requests"] / (d["duration_us"] / 1e6), d["p50_us"] / 1000,
                     d["p99_us"] / 1000, errors, d["requests"])


# --- measurement ----------------------------------------------------------------------------


def cpu_seconds(server: Server) -> float:
    """CPU time of the server's process tree (arbiter, workers, monitor) so far."""
    total = 0.0
    with suppress(psutil.Error):
        root = psutil.Process(server.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    return total


def read_lag(url: str) -> tuple[float | None, float | None]:
    try:
        return metric_value(url, LAG_RECORDS, {}), metric_value(url, LAG_SECONDS, {})
    except httpx.HTTPError:
        return None, None


@contextmanager
def lag_sampler(url: str, every: float = 1.0) -> Iterator[list[tuple[float, float]]]:
    """Samples the monitor lag in the background while the block runs."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            records, seconds = read_lag(url)
            if records is not None and seconds is not None:
                samples.append((records, seconds))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=15)


def wait_caught_up(url: str, timeout: float) -> tuple[float | None, float]:
    """Seconds until the monitor lag is 0 records (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        records, _ = read_lag(url)
        if records == 0:
            return time.monotonic() - started, started
        time.sleep(0.25)
    return None, started


@dataclass
class Round:
    wrk: WrkResult
    cpu_s: float
    lag_max_records: float | None = None
    lag_max_seconds: float | None = None
    lag_after_records: float | None = None
    catch_up_s: float | None = None


def measure(target: Target, wrk: str, script: Path, args: argparse.Namespace) -> Round:
    server = target.server
    assert server is not None
    url = server.url + target.path
    cpu0 = cpu_seconds(server)
    if not target.monitored:
        result = run_wrk(wrk, url, script, args.duration, args.connections, args.threads)
        return Round(result, cpu_seconds(server) - cpu0)
    with lag_sampler(server.url) as samples:
        result = run_wrk(wrk, url, script, args.duration, args.connections, args.threads)
    cpu = cpu_seconds(server) - cpu0
    after_records, after_seconds = read_lag(server.url)
    if after_records is not None and after_seconds is not None:
        samples.append((after_records, after_seconds))
    catch_up, _ = wait_caught_up(server.url, timeout=args.catch_up_timeout)
    return Round(
        result, cpu,
        lag_max_records=max((s[0] for s in samples), default=None),
        lag_max_seconds=max((s[1] for s in samples), default=None),
        lag_after_records=after_records, catch_up_s=catch_up,
    )


@dataclass
class Case:
    name: str
    rows: int
    targets: list[Target]
    rounds: dict[str, list[Round]] = field(default_factory=dict)


def run_case(case: Case, wrk: str, workdir: Path, args: argparse.Namespace) -> None:
    n_bodies = 200 if case.rows == 1 else 16
    rows = reference_rows(MODEL, n_bodies * case.rows, seed=case.rows)
    chunks = [rows[i * case.rows:(i + 1) * case.rows] for i in range(n_bodies)]
    scripts = {
        t.key: wrk_script(workdir / f"{case.name}-{t.key}.lua", [t.body(c) for c in chunks],
                          t.headers)
        for t in case.targets
    }
    print(f"\n[{case.name}] warm-up {args.warmup:.0f} s per service", flush=True)
    for t in case.targets:
        assert t.server is not None
        run_wrk(wrk, t.server.url + t.path, scripts[t.key], args.warmup, args.connections,
                args.threads)
        if t.monitored:
            wait_caught_up(t.server.url, timeout=args.catch_up_timeout)
    for r in range(args.rounds):
        for t in case.targets:
            result = measure(t, wrk, scripts[t.key], args)
            case.rounds.setdefault(t.key, []).append(result)
            lag = (f", lag max {result.lag_max_records:.0f} rec"
                   if result.lag_max_records is not None else "")
            print(f"  round {r + 1}/{args.rounds} {t.label:<30} {result.wrk.rps:8.0f} req/s  "
                  f"p50 {result.wrk.p50_ms:6.1f} ms  p99 {result.wrk.p99_ms:7.1f} ms  "
                  f"errors {result.wrk.errors}{lag}", flush=True)


# --- report ---------------------------------------------------------------------------------


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summarize(case: Case) -> list[dict[str, Any]]:
    out = []
    for t in case.targets:
        rounds = case.rounds.get(t.key, [])
        if not rounds:
            continue
        total_cpu = sum(r.cpu_s for r in rounds)
        total_requests = sum(r.wrk.requests for r in rounds)
        out.append({
            "target": t, "rounds": [r.wrk.rps for r in rounds],
            "rps": _median([r.wrk.rps for r in rounds]),
            "p50": _median([r.wrk.p50_ms for r in rounds]),
            "p99": _median([r.wrk.p99_ms for r in rounds]),
            "errors": sum(r.wrk.errors for r in rounds),
            "per_cpu": total_requests / total_cpu if total_cpu > 0 else None,
            "lag_rec": _max([r.lag_max_records for r in rounds]),
            "lag_s": _max([r.lag_max_seconds for r in rounds]),
            "lag_after": _max([r.lag_after_records for r in rounds]),
            "catch_up": _max([r.catch_up_s for r in rounds]),
            "caught_up": all(r.catch_up_s is not None for r in rounds) if t.monitored else None,
        })
    return out


def paired_ratios(case: Case) -> dict[str, dict[str, float]]:
    """Median over rounds of target/baseline for req/s, p50 and p99, each round against its
    bare baseline's round run just before it (pairs cancel the slow swings of a shared
    machine). Each target is compared with the bare service in the same configuration."""
    out = {}
    for t in case.targets:
        if t.baseline not in case.rounds:
            continue
        pairs = list(zip(case.rounds[t.baseline], case.rounds.get(t.key, []), strict=False))
        if not pairs:
            continue
        out[t.key] = {
            key: statistics.median(getattr(r.wrk, attr) / getattr(b.wrk, attr)
                                   for b, r in pairs)
            for key, attr in (("rps", "rps"), ("p50", "p50_ms"), ("p99", "p99_ms"))
        }
    return out


def print_case(case: Case) -> list[dict[str, Any]]:
    rows = summarize(case)
    paired = paired_ratios(case)
    header = (f"{'service':<31}{'req/s':>8}{'rows/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}"
              f"{'req/CPUs':>9}{'x req/s':>8}{'x p50':>7}{'x p99':>7}{'x req/CPUs':>11}"
              f"{'lag rec':>9}{'lag s':>7}{'after':>7}{'catch-up s':>11}")
    print(f"\n{case.name} ({case.rows} row{'s' if case.rows > 1 else ''} per request)")
    print(header)
    print("-" * len(header))
    for r in rows:
        def ratio(key: str, r: dict[str, Any] = r) -> str:
            if key in paired.get(r["target"].key, {}):
                return f"{paired[r['target'].key][key]:.2f}"
            base = next((b for b in rows if b["target"].key == r["target"].baseline), None)
            if base is None or r[key] is None or not base[key]:
                return "-"
            return f"{r[key] / base[key]:.2f}"

        catch = _fmt(r["catch_up"], ".1f") if r["caught_up"] is not False else "timeout"
        print(f"{r['target'].label:<31}{r['rps']:>8.0f}{r['rps'] * case.rows:>9.0f}"
              f"{r['p50']:>8.1f}{r['p99']:>8.1f}{r['errors']:>5}{_fmt(r['per_cpu'], '.0f'):>9}"
              f"{ratio('rps'):>8}{ratio('p50'):>7}{ratio('p99'):>7}{ratio('per_cpu'):>11}"
              f"{_fmt(r['lag_rec'], '.0f'):>9}{_fmt(r['lag_s'], '.2f'):>7}"
              f"{_fmt(r['lag_after'], '.0f'):>7}{catch if r['target'].monitored else '-':>11}")
    print("req/s per round: " + "; ".join(
        f"{r['target'].key} " + " ".join(f"{v:.0f}" for v in r["rounds"]) for r in rows))
    return rows


def machine_header(args: argparse.Namespace, wrk: str) -> str:
    import bentoml

    mem = psutil.virtual_memory().total / 2**30
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    return "\n".join([
        f"driftgate benchmark  {dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}",
        f"machine: {os.cpu_count()} cores, {mem:.1f} GiB RAM, {platform.machine()}, "
        f"{platform.system()} {platform.release()}, load avg {load}",
        f"python {platform.python_version()}, bentoml {bentoml.__version__}, "
        f"{version.split(' [')[0].strip() or 'wrk'}",
        f"load: wrk -t{args.threads} -c{args.connections} on 127.0.0.1, model {MODEL}, "
        f"{args.rounds} rounds x {args.duration:.0f} s per service in turns after "
        f"{args.warmup:.0f} s warm-up; x = driftgate/bare (median of per-round pairs; "
        "req/CPUs over the service's whole process tree)",
    ])


# --- PostgreSQL -----------------------------------------------------------------------------


def create_pg_database(admin_dsn: str) -> tuple[str, str]:
    import psycopg

    name = f"driftgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"{admin_dsn.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 rounds x 4 s (~1.5 min)")
    p.add_argument("--rounds", type=int, help="rounds per service (default 4; quick 3)")
    p.add_argument("--duration", type=float, help="seconds per round (default 10; quick 4)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default 5; quick 2)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--batch", type=int, default=64, help="rows per request, multi-row case")
    p.add_argument("--logging-modes", action="store_true",
                   help="also driftgate with logging off, durable and async (1-row case)")
    p.add_argument("--postgres", nargs="?", const=DEFAULT_PG, metavar="DSN",
                   help=f"with --logging-modes, also on PostgreSQL (default DSN {DEFAULT_PG}); "
                   "a throwaway database is created and dropped")
    p.add_argument("--auth", action="store_true",
                   help="the cost of API keys: bare, driftgate, and driftgate with a key in its "
                   "store and every request carrying one (one-row case only)")
    p.add_argument("--fast-route", action="store_true",
                   help="what the lean POST /predict route saves: bare, driftgate, and "
                   "driftgate answering /predict through FastAPI (one-row case only)")
    p.add_argument("--catch-up-timeout", type=float, default=30.0,
                   help="longest wait for the monitor to catch up after a round")
    p.add_argument("--keep", action="store_true", help="keep the data dirs and server logs")
    args = p.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (3 if quick else 4)
    args.duration = args.duration or (4.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if quick else 5.0)
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignored
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    wrk = ensure_wrk()
    from models.demo import register_demo_models

    added = register_demo_models(only_missing=True)
    print(machine_header(args, wrk))
    if added:
        print("registered demo models: " + ", ".join(m.tag for m in added))

    # driftgate ships the tail-latency fix (service/tail_latency.py); it is compared with bare
    # BentoML given the same fix, and without it with stock bare BentoML, so the fix never
    # hides the cost of monitoring.
    bare = Target("bare", "bare BentoML + fix", bare=True,
                  env={"BARE_TAIL_LATENCY_FIX": "true"})
    full = gateway_target("driftgate", "driftgate (durable, sqlite)", "sqlite")
    single = [bare, full,
              Target("bare-stock", "bare BentoML, stock", bare=True, baseline="bare-stock"),
              gateway_target("driftgate-stock", "driftgate, fix off", "sqlite", tail_fix=False)]
    workdir = Path(tempfile.mkdtemp(prefix="driftgate-bench-"))
    started: list[Server] = []
    pg: tuple[str, str] | None = None
    started_at = time.monotonic()
    auth = Target("auth", "driftgate + API key", env=full.env, monitored=True,
                  baseline="driftgate", api_key=new_api_key())
    if args.auth:
        single = [bare, full, auth]
    if args.fast_route:
        single = [bare, full, Target("fastroute-off", "driftgate, FastAPI /predict",
                                     env={**full.env, "DRIFTGATE_FAST_PREDICT_ROUTE": "false"},
                                     monitored=True, baseline="driftgate")]
    try:
        if args.logging_modes:
            single += [gateway_target("off", "driftgate (logging off)", "sqlite", logging=False),
                       gateway_target("nomon", "driftgate (durable, no monitor)", "sqlite",
                                      monitoring=False),
                       gateway_target("async", "driftgate (async, sqlite)", "sqlite",
                                      durability="async")]
            if args.postgres:
                try:
                    pg = create_pg_database(args.postgres)
                except Exception as exc:  # report, go on without it
                    print(f"PostgreSQL at {args.postgres} not usable, skipped: {exc}")
                if pg:
                    single += [
                        gateway_target("pg", "driftgate (durable, postgres)",
                                       pg_schema_url(pg[1])),
                        gateway_target("pg-async", "driftgate (async, postgres)",
                                       pg_schema_url(pg[1]), durability="async"),
                    ]
        print(f"starting {len(single)} services ...", flush=True)
        start_all(single, workdir, started)
        print(f"all ready after {time.monotonic() - started_at:.0f} s; "
              + check_same_predictions(single, reference_rows(MODEL, 8, seed=0)), flush=True)
        cases = [Case("one row", 1, single)]
        if not (args.auth or args.fast_route):
            cases.append(Case(f"batch of {args.batch}", args.batch, [bare, full]))
        for case in cases:
            run_case(case, wrk, workdir, args)
        print(f"\nresults (medians over rounds; run took {time.monotonic() - started_at:.0f} s)")
        summaries = [print_case(case) for case in cases]
        print_verdict(cases[0], summaries[0])
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        for process in list(_RUNNING):
            process.kill()
        for server in started:
            with suppress(Exception):
                stop_gateway(server)
        if pg:
            with suppress(Exception):
                drop_pg_database(args.postgres, pg[0])
        if args.keep:
            print(f"data dirs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def print_verdict(case: Case, rows: list[dict[str, Any]]) -> None:
    """The quality bar, for both configurations: with and without the tail-latency fix."""
    by_key = {r["target"].key: r for r in rows}
    paired = paired_ratios(case)
    if "auth" in paired and "driftgate" in by_key:
        with_key, without = by_key["auth"], by_key["driftgate"]
        print(f"authentication (a predict key on every request vs no keys, one row): "
              f"{paired['auth']['rps']:.3f}x req/s, p50 {paired['auth']['p50']:.2f}x, "
              f"p99 {paired['auth']['p99']:.2f}x (medians {with_key['rps']:.0f} vs "
              f"{without['rps']:.0f} req/s); errors {with_key['errors']}")
    for key, title in (("driftgate", "with the timer/GC fix on both sides"),
                       ("driftgate-stock", "stock, no fix on either side")):
        if key not in by_key or key not in paired:
            continue
        full = by_key[key]
        base = by_key[full["target"].baseline]
        ratio = paired[key]["rps"]
        per_cpu = (full["per_cpu"] / base["per_cpu"]
                   if full["per_cpu"] and base["per_cpu"] else None)
        verdict = "meets" if ratio >= 0.9 else "MISSES"
        print(f"quality bar (driftgate >= 0.9x bare req/s, one row, {title}): {verdict} at "
              f"{ratio:.2f}x (per CPU second {_fmt(per_cpu, '.2f')}x; p99 {full['p99']:.0f} "
              f"vs {base['p99']:.0f} ms); errors: bare {base['errors']}, "
              f"driftgate {full['errors']}")


if __name__ == "__main__":
    sys.exit(main())
