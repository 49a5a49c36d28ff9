"""Routing changes under load: how long until every worker of every replica serves a change,
and how many requests fail meanwhile (must be none).

    python -m loadtests.routing_changes [--store sqlite|postgres] [--changes 20]
                                        [--max-seconds 2.0]

Starts two real gateways (``bentoml serve``, two workers each) on two ports sharing one
store, keeps a checking client on both (a new connection per request, so every worker gets
traffic), makes ``--changes`` routing changes over HTTP (promote, canary, canary off,
rollback, alternating between the gateways) and, after each, polls both gateways'
``driftgate_routing_revision`` (the lowest revision any live worker applies) until it reaches
the change's revision. Exits 1 when a request failed or the median time until every worker
serves a change is over ``--max-seconds`` (the 2 s target). Traffic goes to 127.0.0.1 only;
everything stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LOAD_SECONDS_MAX = 600.0  # the load client stops by itself after this long


@dataclass(slots=True)
class Answer:
    t: float
    url: str
    status: int
    version: str | None
    ids: list[str]
    error: str | None = None


@dataclass
class LoadClient:
    """Threads posting one row per request to every gateway in turn, recording every answer."""

    urls: list[str]
    model: str
    rows: list[dict[str, Any]]
    threads: int = 4
    pause: float = 0.005
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.threads)]

    def start(self) -> LoadClient:
        for worker in self._workers:
            worker.start()
        return self

    def _run(self, index: int) -> None:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        limits = httpx.Limits(max_keepalive_connections=0)  # spread over the workers
        with httpx.Client(timeout=30, limits=limits) as http:
            i = index
            while not self._stop.is_set() and time.monotonic() < deadline:
                url = self.urls[i % len(self.urls)]
                # every gateway gets every row: with i indexing both, two gateways and an even
                # number of rows would split the rows by parity, and a canary routed on one
                # gateway before the other would answer a skewed subset of them
                row = self.rows[(i // len(self.urls)) % len(self.rows)]
                body = {"model": self.model, "inputs": [row]}
                answer = _post(http, url, body)
                with self._lock:
                    self.answers.append(answer)
                i += 1
                self._stop.wait(self.pause)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return list(self.answers)

    def since(self, t: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.t >= t]

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]


def _post(http: httpx.Client, url: str, body: dict[str, Any]) -> Answer:
    try:
        response = http.post(f"{url}/predict", json=body)
    except httpx.HTTPError as exc:
        return Answer(time.monotonic(), url, 0, None, [], repr(exc))
    done = time.monotonic()
    if response.status_code != 200:
        return Answer(done, url, response.status_code, None, [], response.text[:300])
    payload = response.json()
    return Answer(done, url, 200, payload["version"], payload["ids"])


def applied_revision(url: str) -> int:
    """The lowest routing revision any live worker of the gateway at ``url`` applies."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("driftgate_routing_revision "):
            return int(float(line.split()[1]))
    return -1


def wait_applied(urls: list[str], revision: int, since: float, timeout: float = 30.0) -> float:
    """Seconds from ``since`` (monotonic) until every worker of every gateway applies
    ``revision`` (each gateway polled by its own thread, every 10 ms)."""
    reached: dict[str, float] = {}

    def poll(url: str) -> None:
        while time.monotonic() - since < timeout:
            if applied_revision(url) >= revision:
                reached[url] = time.monotonic()
                return
            time.sleep(0.01)

    pollers = [threading.Thread(target=poll, args=(url,)) for url in urls]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()
    if len(reached) < len(urls):
        raise TimeoutError(f"revision {revision} not applied by {sorted(set(urls) - set(reached))}")
    return max(reached.values()) - since


def change(url: str, model: str, action: str, **body: Any) -> tuple[int, float]:
    """Make one routing change over HTTP; returns (its revision, when it was sent)."""
    revision, sent, _ = timed_change(url, model, action, **body)
    return revision, sent


def timed_change(url: str, model: str, action: str, **body: Any) -> tuple[int, float, float]:
    """As :func:`change`, also returning when the answer (the change is committed) came."""
    sent = time.monotonic()
    if action == "rollback":
        response = httpx.post(f"{url}/models/{model}/rollback", json=body, timeout=30)
    else:
        response = httpx.put(f"{url}/models/{model}/routing", json=body, timeout=30)
    response.raise_for_status()
    made = response.json()["change"]
    if made is None:
        raise RuntimeError(f"{action} {body} changed nothing")
    return made["revision"], sent, time.monotonic()


def change_plan(v1: str, v2: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` changes that each move the routing, cycling promote/canary/off/rollback.

    The default alternates between the versions; the canary is always the other one."""
    cycle = [
        ("promote", {"default": v2}),
        ("canary", {"canary": {"version": v1, "weight": 0.3}}),
        ("canary off", {"canary": None}),
        ("rollback", {}),  # back to v1
        ("canary", {"canary": {"version": v2, "weight": 0.5}}),
        ("canary off", {"canary": None}),
    ]
    return [cycle[i % len(cycle)] for i in range(n)]


@dataclass
class ChangeResult:
    action: str
    revision: int
    seconds: float  # from sending the change until every worker serves it
    committed: float  # of which the admin request itself (the change is in the store)
    failed: int


def run_changes(urls: list[str], model: str, v1: str, v2: str, load: LoadClient,
                n: int = 20, settle: float = 0.3) -> list[ChangeResult]:
    """Make ``n`` changes (starting from default ``v1``, no canary) while ``load`` runs."""
    results = []
    for i, (action, body) in enumerate(change_plan(v1, v2, n)):
        kind = "rollback" if action == "rollback" else "put"
        failed_before = len(load.failures())
        revision, sent, answered = timed_change(urls[i % len(urls)], model, kind, **body,
                                                reason=f"benchmark change {i + 1}")
        seconds = wait_applied(urls, revision, sent)
        time.sleep(settle)
        results.append(ChangeResult(action, revision, seconds, answered - sent,
                                    len(load.failures()) - failed_before))
    return results


def report(results: list[ChangeResult], load: LoadClient, label: str) -> str:
    seconds = [r.seconds for r in results]
    after_commit = [r.seconds - r.committed for r in results]
    answers = load.answers
    lines = [
        f"routing changes ({label}): {len(results)} changes, 2 gateways x 2 workers, "
        f"{len(answers)} requests during the run",
        f"  time until every worker serves the new state: median {statistics.median(seconds):.3f}"
        f" s, max {max(seconds):.3f} s, min {min(seconds):.3f} s",
        f"  of which after the change was committed: median "
        f"{statistics.median(after_commit):.3f} s, max {max(after_commit):.3f} s",
        f"  failed requests during changes: {len(load.failures())}",
    ]
    for r in results:
        lines.append(f"    r{r.revision:<4} {r.action:<11} {r.seconds:.3f} s (admin request "
                     f"{r.committed:.3f} s)  failed {r.failed}")
    return "\n".join(lines)


def verdict(results: list[ChangeResult], load: LoadClient, max_seconds: float) -> int:
    """0 when no request failed and the median change reached every worker within
    ``max_seconds``; else 1, with the reason printed."""
    median = statistics.median(r.seconds for r in results)
    problems = []
    if load.failures():
        problems.append(f"{len(load.failures())} failed requests")
    if median > max_seconds:
        problems.append(f"median {median:.3f} s over the {max_seconds:g} s target")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    import os
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="driftgate-routing-bench-"))
    os.environ["BENTOML_HOME"] = str(base / "bentoml")  # a private model store, before bentoml
    from loadtests.harness import (
        fresh_name,
        pg_schema_url,
        register_version,
        start_gateway_retrying,
        stop_gateway,
    )
    from models.registry import get_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL server (a throwaway schema is created in it)")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=2.0,
                        help="target: median seconds until every worker serves a change")
    args = parser.parse_args(argv)

    name = fresh_name("bench-routing")
    v1, v2 = register_version(name, 1.0).version, register_version(name, 2.0).version
    entry = get_model(name, v1)
    rows = entry.reference()[entry.card.feature_names].head(20).to_dict("records")
    store_url = str(base / "shared.sqlite3")
    if args.store == "postgres":
        store_url = pg_schema_url(args.pg)
    env = {"DRIFTGATE_STORE_URL": store_url}
    servers = []
    try:
        servers.append(start_gateway_retrying(base / "a", env))
        servers.append(start_gateway_retrying(
            base / "b", {**env, "DRIFTGATE_MONITORING_ENABLED": "false"}))
        urls = [s.url for s in servers]
        change(urls[0], name, "put", default=v1, reason="benchmark start")
        load = LoadClient(urls, name, rows).start()
        try:
            results = run_changes(urls, name, v1, v2, load, args.changes)
        finally:
            load.stop()
        print(report(results, load, args.store))
        return verdict(results, load, args.max_seconds)
    finally:
        for server in servers:
            stop_gateway(server)


if __name__ == "__main__":
    raise SystemExit(main())
