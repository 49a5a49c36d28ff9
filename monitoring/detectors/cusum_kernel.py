"""The compiled inner loop of :class:`monitoring.detectors.cusum.CusumBank`: one pass over a
batch's records with group resets, compiled by numba.

A chart that fires restarts at zero, which numpy cannot express without a pass over the rest
of the batch per alarm: during a sustained drift every chart fires every few records and the
cost per record grew with the alarms. The loop below costs the same per record whether
charts fire or not, and less than numpy's cumulative-sum pass on a quiet batch. It is
compiled on first use (1-2 s; numba caches the result beside this file, or under
``NUMBA_CACHE_DIR``, when it can write there) and a long-running monitor calls
:func:`warm_up` at start.

>>> import numpy as np
>>> y = np.array([[3.0, -1.0], [3.0, 2.0], [3.0, 2.0]])
>>> h, charts = np.array([5.0, 3.0]), np.array([0, 1])
>>> follow_groups(y, np.zeros(2), h, charts, np.array([0, 1, 2]))  # two groups
(array([1, 2]), array([0, 1]), array([6., 4.]), array([3., 0.]))
>>> follow_groups(y, np.zeros(2), h, charts, np.array([0, 2]))[0]  # one: chart 0 resets 1
array([1])
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import numpy as np

__all__ = ["follow_groups", "warm_up"]

_COMPILING = threading.Lock()


def _follow(y: Any, s: Any, h: Any, charts: Any, bounds: Any) -> Any:
    n = y.shape[0]
    groups = bounds.size - 1
    cap = 64
    rows = np.empty(cap, np.int64)
    which = np.empty(cap, np.int64)
    stats = np.empty(cap, np.float64)
    k = 0
    for t in range(n):
        for g in range(groups):
            fired = False
            for i in range(bounds[g], bounds[g + 1]):
                j = charts[i]
                v = s[j] + y[t, j]
                if v < 0.0:
                    v = 0.0
                s[j] = v
                if v > h[j]:
                    fired = True
            if not fired:
                continue
            for i in range(bounds[g], bounds[g + 1]):
                j = charts[i]
                if s[j] > h[j]:
                    if k == cap:
                        cap *= 2
                        rows = np.concatenate((rows, np.empty(cap - k, np.int64)))
                        which = np.concatenate((which, np.empty(cap - k, np.int64)))
                        stats = np.concatenate((stats, np.empty(cap - k, np.float64)))
                    rows[k] = t
                    which[k] = j
                    stats[k] = s[j]
                    k += 1
                s[j] = 0.0  # the whole group restarts at zero after its alarm
    return rows[:k], which[:k], stats[:k]


@cache
def _kernel() -> Any:
    import numba

    try:
        return numba.njit(nogil=True, cache=True)(_follow)
    except RuntimeError:  # no writable cache location: compile in every process
        return numba.njit(nogil=True)(_follow)


def _compiled() -> Any:
    # one dispatcher, whichever thread asks first; numba compiles at its first call, under
    # its own lock, so a step arriving during warm_up waits for that compilation
    with _COMPILING:
        return _kernel()


def warm_up() -> None:
    """Compile the kernel now (for a monitor that must not pause at its first alarm)."""
    follow_groups(np.zeros((1, 1)), np.zeros(1), np.ones(1), np.zeros(1, np.int64),
                  np.array([0, 1]))


def follow_groups(
    y: np.ndarray, s: np.ndarray, h: np.ndarray, charts: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the charts ``charts`` (grouped: group ``g`` is ``charts[bounds[g]:bounds[g+1]]``)
    over the increments ``y`` (records x all charts, no NaN) from the statistics ``s`` with
    thresholds ``h``; when any chart of a group exceeds its threshold, every chart of that
    group over it alarms and the group restarts at zero. Returns the alarms' rows, charts and
    statistics (by row, then group) and the statistics at the end (charts not followed keep
    ``s``)."""
    state = np.array(s, dtype=np.float64)
    rows, which, stats = _compiled()(
        np.ascontiguousarray(y, dtype=np.float64), state, np.asarray(h, dtype=np.float64),
        np.asarray(charts, dtype=np.int64), np.asarray(bounds, dtype=np.int64),
    )
    return rows, which, stats, state
