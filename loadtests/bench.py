"""Side-by-side benchmark: a bare BentoML service vs the full driftgate gateway, same model.

    make bench                                    # = python -m loadtests.bench  (~8 min)
    python -m loadtests.bench --quick             # ~3 min
    python -m loadtests.bench --no-heavy --large-batch 0   # one row and 64 rows only
    python -m loadtests.bench --heavy-only --rounds 5      # adaptive batching only (~4 min)
    python -m loadtests.bench --logging-modes     # + logging off / durable / async (~6 min)
    python -m loadtests.bench --logging-modes --postgres          # + PostgreSQL (default DSN)
    python -m loadtests.bench --logging-modes --postgres postgresql://me@db:5432/postgres
    python -m loadtests.bench --auth              # bare, driftgate, driftgate with API keys
    python -m loadtests.bench --fast-route        # bare, driftgate, driftgate without fast route

Both services run at once on 127.0.0.1, each in its own temporary data directory, and wrk
(64 connections, a Lua POST script rotating reference rows of ``diabetes``) drives them in
turns: warm-up, then A, B, A, B, ... for ``--rounds`` rounds of ``--duration`` seconds, first
with one row per request, then with ``--batch`` and ``--large-batch`` rows per request, then
the heavy model (a 300-tree random forest) at one row per request: bare BentoML with its
adaptive batching (``batchable=True``) beside driftgate with adaptive batching at its
default (``auto``, on for this model) and switched off. The table shows the median over
rounds of requests/s, rows/s, p50 and p99 latency, the ratios to the bare service, CPU per
row of the service's processes and of the monitor's separately, the prediction log's bytes
per row, and the monitor lag read from the gateway's /metrics during and right after each
driftgate round (the next round starts once the monitor has caught up, so a backlog never
steals CPU from the other service's round).

The demo models are registered in the BentoML model store (``BENTOML_HOME``) if missing;
the heavy model only in a model store of the benchmark's own, deleted at the end.
wrk is installed with apt-get when absent and we are root. Everything started is stopped on
exit, Ctrl-C and errors; a throwaway PostgreSQL database is dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import sqlite3
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
HEAVY_MODEL = "diabetes-forest"  # registered in the benchmark's own model store only
HEAVY_TREES = 300
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
    model: str = MODEL
    service: str | None = None  # the bare service class, when not the default one
    batching: dict[str, Any] | None = None  # the gateway's serving-file batching of `model`
    models_home: Path | None = None  # a model store of its own (else the shared one)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def path(self) -> str:
        return "/predict"

    def body(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"inputs": rows} if self.bare else {"model": self.model, "inputs": rows}


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
    home = (own_models_home(data_dir, target.models_home) if target.models_home
            else private_bentoml_home(data_dir))
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": home, **target.env}
    if target.bare:
        service = target.service or "loadtests.bare_service:BareService"
        env["BARE_MODEL"] = target.model
    else:
        service = "service.gateway:Gateway"
        config = data_dir / "driftgate.yaml"  # serve the benchmarked model only, like bare
        served: dict[str, Any] = {"default": "latest"}
        if target.batching is not None:
            served["batching"] = target.batching
        config.write_text(yaml.safe_dump({"models": {target.model: served}}))
        env |= {"DRIFTGATE_DATA_DIR": str(data_dir), "DRIFTGATE_CONFIG_FILE": str(config)}
        if target.api_key:
            store_key(data_dir / "predictions.sqlite3", target.api_key)
    process = subprocess.Popen(
        [str(BENTOML), "serve", service, "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Launched(process, port, data_dir, log)


def own_models_home(data_dir: Path, models: Path) -> str:
    """A BENTOML_HOME whose model store is ``models`` (the heavy model's, never the shared
    store that ``make serve`` serves from)."""
    home = data_dir / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(models, target_is_directory=True)
    return str(home)


def register_heavy_model(workdir: Path) -> Path:
    """Train and register the heavy model in a BentoML model store of the benchmark's own
    (a subprocess: BENTOML_HOME is read once per process); returns the store's directory."""
    home = workdir / "heavy-store"
    (home / "models").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    code = f"from loadtests.bench import train_heavy; print(train_heavy({HEAVY_TREES}))"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"registering {HEAVY_MODEL} failed:\n{done.stderr[-3000:]}")
    return home / "models"


def train_heavy(trees: int) -> str:
    """A random forest of ``trees`` trees on the diabetes data (same features as
    ``diabetes``): a model whose every call costs milliseconds whatever its rows."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import train_test_split

    from models.demo import SEED, diabetes_data
    from models.registry import register_model

    X, y = diabetes_data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=SEED)
    forest = RandomForestRegressor(n_estimators=trees, random_state=SEED).fit(X_tr.to_numpy(),
                                                                              y_tr)
    entry = register_model(HEAVY_MODEL, forest, X_tr, y_tr, reference=X_te,
                           reference_target=y_te, parameters={"n_estimators": trees},
                           code_version="driftgate-bench")
    return entry.tag


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


MONITOR_SERVICE = "driftgate-monitor"  # the monitor worker's --service-name


def cpu_seconds(server: Server) -> dict[str, float]:
    """CPU time so far of the server's process tree, split into ``monitor`` (the monitor
    service's worker, told apart by its command line) and ``service`` (the arbiter and the
    entry service's workers)."""
    total = {"service": 0.0, "monitor": 0.0}
    with suppress(psutil.Error):
        root = psutil.Process(server.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with suppress(psutil.Error):
                times = proc.cpu_times()
                role = "monitor" if MONITOR_SERVICE in proc.cmdline() else "service"
                total[role] += (times.user + times.system + times.children_user
                                + times.children_system)
    return total


def log_bytes(server: Server) -> int:
    """Bytes of the SQLite prediction log: its pages, in the database file or still in the
    write-ahead log (``page_count x page_size`` of the latest snapshot). The files' sizes
    measure the same once the WAL is checkpointed; before, the WAL file keeps its high-water
    size, which would count a large commit's pages twice."""
    path = server.data_dir / "predictions.sqlite3"
    if not path.exists():
        return 0
    with suppress(sqlite3.Error), contextlib.closing(
        sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    ) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])
    return 0


def predictions_total(url: str) -> float:
    """Rows the gateway predicted and logged so far (sum of driftgate_predictions_total)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("driftgate_predictions_total{"))


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
    cpu_s: float  # the service's processes (for the gateway: arbiter and workers)
    monitor_cpu_s: float = 0.0  # the monitor's process, until it caught up
    rows: int = 0  # rows answered with a 2xx while wrk ran
    logged: int = 0  # rows logged (the gateway's count: also those in flight at the end)
    log_bytes: int = 0  # growth of the prediction log
    lag_max_records: float | None = None
    lag_max_seconds: float | None = None
    lag_after_records: float | None = None
    catch_up_s: float | None = None


def measure(target: Target, wrk: str, script: Path, args: argparse.Namespace,
            rows: int) -> Round:
    server = target.server
    assert server is not None
    url = server.url + target.path
    cpu0, bytes0 = cpu_seconds(server), log_bytes(server)
    logged0 = 0.0 if target.bare else predictions_total(server.url)
    if not target.monitored:
        result = run_wrk(wrk, url, script, args.duration, args.connections, args.threads)
        cpu = cpu_seconds(server)
        answered = (result.requests - result.errors) * rows
        if target.bare:
            return Round(result, cpu["service"] - cpu0["service"], 0.0, answered, answered)
        time.sleep(1.0)  # requests still in flight when wrk stopped are logged
        return Round(result, cpu["service"] - cpu0["service"], 0.0, answered,
                     round(predictions_total(server.url) - logged0), log_bytes(server) - bytes0)
    with lag_sampler(server.url) as samples:
        result = run_wrk(wrk, url, script, args.duration, args.connections, args.threads)
    cpu = cpu_seconds(server)
    after_records, after_seconds = read_lag(server.url)
    if after_records is not None and after_seconds is not None:
        samples.append((after_records, after_seconds))
    catch_up, _ = wait_caught_up(server.url, timeout=args.catch_up_timeout)
    monitor_cpu = cpu_seconds(server)["monitor"] - cpu0["monitor"]  # its catch-up included
    return Round(
        result, cpu["service"] - cpu0["service"], monitor_cpu,
        (result.requests - result.errors) * rows, round(predictions_total(server.url) - logged0),
        log_bytes(server) - bytes0,
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
            result = measure(t, wrk, scripts[t.key], args, case.rows)
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
        service_cpu = sum(r.cpu_s for r in rounds)
        monitor_cpu = sum(r.monitor_cpu_s for r in rounds)
        total_requests = sum(r.wrk.requests for r in rounds)
        rows = sum(r.rows for r in rounds)
        logged = sum(r.logged for r in rounds)
        log_growth = sum(r.log_bytes for r in rounds)
        out.append({
            "target": t, "rounds": [r.wrk.rps for r in rounds],
            "rps": _median([r.wrk.rps for r in rounds]),
            "p50": _median([r.wrk.p50_ms for r in rounds]),
            "p99": _median([r.wrk.p99_ms for r in rounds]),
            "errors": sum(r.wrk.errors for r in rounds),
            "per_cpu": (total_requests / (service_cpu + monitor_cpu)
                        if service_cpu + monitor_cpu > 0 else None),
            "cpu_us_row": service_cpu / rows * 1e6 if rows else None,
            "monitor_us_row": monitor_cpu / logged * 1e6 if logged and t.monitored else None,
            "log_bytes_row": log_growth / logged if logged and not t.bare else None,
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
    header = (f"{'service':<34}{'req/s':>7}{'rows/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}"
              f"{'x req/s':>8}{'x p50':>7}{'x p99':>7}{'CPU us/row':>11}{'mon us/row':>11}"
              f"{'log B/row':>10}{'lag rec':>9}{'lag s':>7}{'catch-up s':>11}")
    print(f"\n{case.name} ({case.rows} row{'s' if case.rows > 1 else ''} per request, "
          f"model {case.targets[0].model})")
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
        print(f"{r['target'].label:<34}{r['rps']:>7.0f}{r['rps'] * case.rows:>9.0f}"
              f"{r['p50']:>8.1f}{r['p99']:>8.1f}{r['errors']:>5}"
              f"{ratio('rps'):>8}{ratio('p50'):>7}{ratio('p99'):>7}"
              f"{_fmt(r['cpu_us_row'], '.1f'):>11}{_fmt(r['monitor_us_row'], '.1f'):>11}"
              f"{_fmt(r['log_bytes_row'], '.0f'):>10}"
              f"{_fmt(r['lag_rec'], '.0f'):>9}{_fmt(r['lag_s'], '.2f'):>7}"
              f"{catch if r['target'].monitored else '-':>11}")
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
        f"load: wrk -t{args.threads} -c{args.connections} on 127.0.0.1, model {MODEL} (heavy: "
        f"{HEAVY_MODEL}, {HEAVY_TREES} trees), {args.rounds} rounds x {args.duration:.0f} s per "
        f"service in turns after {args.warmup:.0f} s warm-up; x = driftgate/bare (median of "
        "per-round pairs); CPU us/row: the service's processes (driftgate: arbiter and "
        "gateway workers) per row answered while wrk ran; mon us/row: the monitor's process "
        "until it caught up, per row logged; log B/row: growth of the SQLite log (its pages, "
        "database and WAL) per row logged",
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
    p.add_argument("--quick", action="store_true", help="2 rounds x 4 s (~3 min)")
    p.add_argument("--rounds", type=int, help="rounds per service (default 3; quick 2)")
    p.add_argument("--duration", type=float, help="seconds per round (default 7; quick 4)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default 3; quick 2)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--batch", type=int, default=64, help="rows per request, multi-row case")
    p.add_argument("--large-batch", type=int, default=1000,
                   help="rows per request, large multi-row case (0: skip it)")
    p.add_argument("--no-heavy", action="store_true",
                   help=f"skip the heavy-model case ({HEAVY_TREES}-tree forest, one row per "
                   "request: bare BentoML batchable=True, driftgate batching on and off)")
    p.add_argument("--heavy-only", action="store_true", help="only the heavy-model case")
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
    args.rounds = args.rounds or (2 if quick else 3)
    args.duration = args.duration or (4.0 if quick else 7.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if quick else 3.0)
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
    heavy = [] if args.no_heavy or args.auth or args.fast_route else heavy_targets(bare)
    auth = Target("auth", "driftgate + API key", env=full.env, monitored=True,
                  baseline="driftgate", api_key=new_api_key())
    if args.auth:
        single = [bare, full, auth]
    if args.fast_route:
        single = [bare, full, Target("fastroute-off", "driftgate, FastAPI /predict",
                                     env={**full.env, "DRIFTGATE_FAST_PREDICT_ROUTE": "false"},
                                     monitored=True, baseline="driftgate")]
    if args.heavy_only:
        single = []
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
        if heavy:
            models = register_heavy_model(workdir)
            for t in heavy:
                t.models_home = models
            print(f"registered {HEAVY_MODEL} ({HEAVY_TREES} trees) in the benchmark's own "
                  f"model store after {time.monotonic() - started_at:.0f} s", flush=True)
        print(f"starting {len(single) + len(heavy)} services ...", flush=True)
        start_all(single + heavy, workdir, started)
        rows = reference_rows(MODEL, 8, seed=0)  # the heavy model has the same features
        print(f"all ready after {time.monotonic() - started_at:.0f} s", flush=True)
        for group in (single, heavy):
            if group:
                print(check_same_predictions(group, rows))
        for t in single + heavy:
            if not t.bare:
                print(f"{t.label} ({t.model}): {batching_of(t)}", flush=True)
        cases = [Case("one row", 1, single)] if single else []
        if single and not (args.auth or args.fast_route):
            cases.append(Case(f"batch of {args.batch}", args.batch, [bare, full]))
            if args.large_batch:
                cases.append(Case(f"batch of {args.large_batch}", args.large_batch,
                                  [bare, full]))
        if heavy:
            cases.append(Case("heavy model", 1, heavy))
        for case in cases:
            run_case(case, wrk, workdir, args)
        print(f"\nresults (medians over rounds; run took {time.monotonic() - started_at:.0f} s)")
        summaries = [print_case(case) for case in cases]
        print()
        for case, summary in zip(cases, summaries, strict=True):
            if case.name == "one row":
                print_verdict(case, summary)
            else:
                print_targets(case, summary)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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


def heavy_targets(bare: Target) -> list[Target]:
    """The heavy-model case: bare BentoML with its adaptive batching, driftgate with
    batching at its default (``auto``: on for a model this heavy) and switched off."""
    gateway = gateway_target("heavy", "driftgate, batching auto", "sqlite")
    return [
        Target("bare-batch", "bare BentoML batchable=True + fix", bare=True,
               env=bare.env, model=HEAVY_MODEL, baseline="bare-batch",
               service="loadtests.bare_service:BareBatchService"),
        Target("heavy", gateway.label, env=gateway.env, monitored=True, baseline="bare-batch",
               model=HEAVY_MODEL),
        Target("heavy-off", "driftgate, batching off", env=gateway.env, monitored=True,
               baseline="bare-batch", model=HEAVY_MODEL, batching={"enabled": False}),
    ]


def batching_of(target: Target) -> str:
    """The batching decision of the version the target serves (GET /models/{name})."""
    assert target.server is not None
    body = httpx.get(f"{target.server.url}/models/{target.model}", timeout=30).json()
    decisions = (body.get("serving") or {}).get("batching") or {}
    return "; ".join(f"adaptive batching {'on' if d['enabled'] else 'off'} ({d['reason']})"
                     for d in decisions.values()) or "batching unknown"


def print_targets(case: Case, rows: list[dict[str, Any]]) -> None:
    """The issue's targets for the multi-row and heavy-model cases, from this run."""
    paired = paired_ratios(case)
    by_key = {r["target"].key: r for r in rows}
    if "driftgate" in paired:
        ratio = paired["driftgate"]["rps"]
        print(f"target ({case.name}: driftgate >= 0.8x bare req/s): "
              f"{'meets' if ratio >= 0.8 else 'MISSES'} at {ratio:.2f}x")
    if "heavy" in paired:
        ratio = paired["heavy"]["rps"]
        print(f"target (heavy model: batching >= 0.9x bare batchable=True req/s): "
              f"{'meets' if ratio >= 0.9 else 'MISSES'} at {ratio:.2f}x")
        if "heavy-off" in case.rounds:
            pairs = list(zip(case.rounds["heavy-off"], case.rounds["heavy"], strict=False))
            gain = statistics.median(on.wrk.rps / off.wrk.rps for off, on in pairs)
            print(f"target (heavy model: batching >= 3x driftgate without batching): "
                  f"{'meets' if gain >= 3 else 'MISSES'} at {gain:.2f}x (median of per-round "
                  "pairs)")
        on = by_key["heavy"]
        tail = on["p99"] / on["p50"]
        print(f"target (heavy model with batching: p99 <= 3x p50): "
              f"{'meets' if tail <= 3 else 'MISSES'} at {tail:.2f}x "
              f"({on['p99']:.1f} vs {on['p50']:.1f} ms)")


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
