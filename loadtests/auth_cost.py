"""CPU cost of the API-key check on one request, in process (no network, no server):
``python -m loadtests.auth_cost``. Times the ASGI guard around an app that answers nothing,
with no keys in the store (open gateway), and with keys and a valid predict key sent, in
interleaved repeats; prints the median microseconds per request of each and the difference.
Set against the gateway's CPU per one-row request (about 700 us: 1,418 requests per CPU
second, README Performance), it bounds the cost of authentication."""

from __future__ import annotations

import asyncio
import statistics
import time

from service.auth.guard import AuthGuard
from service.auth.keyring import KeyRing
from service.auth.keys import new_key

N = 20_000


async def _noop(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    return None


def _time(guard: AuthGuard, scope: dict) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(N):
            await guard(dict(scope), _noop, _noop)  # type: ignore[arg-type]
        return (time.perf_counter() - started) / N * 1e6

    return asyncio.run(run())


def main() -> None:
    token, row = new_key(["predict"], models=None, expires_at=None, name="bench",
                         actor="bench", now=time.time())
    others = [new_key(["read"], models=None, expires_at=None, name=None, actor="b",
                      now=time.time())[1] for _ in range(50)]
    secured, open_ring = KeyRing(None), KeyRing(None)
    secured.load([row, *others])
    scope = {"type": "http", "method": "POST", "path": "/predict", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {token}".encode())]}
    guards = {"open (no keys)": AuthGuard(_noop, lambda: open_ring, metrics_open=True),
              "with keys": AuthGuard(_noop, lambda: secured, metrics_open=True)}
    samples: dict[str, list[float]] = {name: [] for name in guards}
    for _ in range(7):
        for name, guard in guards.items():
            samples[name].append(_time(guard, scope))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    for name, value in medians.items():
        print(f"{name:<16} {value:6.2f} us per request (median of 7 x {N})")
    extra = medians["with keys"] - medians["open (no keys)"]
    print(f"key check: +{extra:.2f} us per request = {extra / 700 * 100:.2f}% of the gateway's "
          "~700 us of CPU per one-row request")


if __name__ == "__main__":
    main()
