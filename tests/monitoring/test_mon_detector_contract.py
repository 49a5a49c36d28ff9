"""One contract test over every registered detector (river's ``test_drift_detectors.py``).

Every detector of :data:`monitoring.detectors.registry.DETECTORS`, calibrated on the same
seeded reference of its kind: quiet on a seeded stationary stream within its budget, first
alarm at an exact index on a seeded shift, a snapshot restored mid-stream makes the same
decisions as an uninterrupted run, ``reset()`` forgets, and the score is below 1 before the
first alarm and at least 1 at it. A new detector needs its entry in ``FIRST_ALARM``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from monitoring.detectors import Budget, StreamDetector, detector_class
from monitoring.detectors.registry import DETECTORS

SHIFT_AT = 500
RATE = 2e-6  # false alarms per record (a 5-feature model's share at ERT 100,000)
CATS = ["a", "b", "c"]
COV = [[1.0, 0.8], [0.8, 1.0]]

# (kind, name) -> first alarm on the seeded shifted stream (index counted from the change)
FIRST_ALARM = {
    ("numeric", "cusum"): 27,
    ("numeric", "page_hinkley"): 29,
    ("numeric", "adwin"): 43,
    ("numeric", "kswin"): 92,
    ("categorical", "gtest"): 192,
    ("multivariate", "mahalanobis_cusum"): 16,
    ("errors", "adwin"): 107,
    ("errors", "ddm"): 21,
    ("errors", "hddm_a"): 11,
}
# stationary records per kind, and the alarms allowed on them
STATIONARY = {"numeric": 8_000, "categorical": 8_000, "multivariate": 8_000, "errors": 8_000}
ALLOWED = {"numeric": 0, "categorical": 0, "multivariate": 0, "errors": 1}


def _reference(kind: str, rng: np.random.Generator) -> Any:
    if kind == "numeric":
        return rng.standard_normal(2000)
    if kind == "categorical":
        return list(rng.choice(CATS, size=2000, p=[0.5, 0.3, 0.2]))
    if kind == "multivariate":
        return rng.multivariate_normal([0.0, 0.0], COV, 2000)
    return None  # error detectors run at their default setting


def _stream(kind: str, n: int, shifted: bool, rng: np.random.Generator) -> Any:
    """``n`` values; with ``shifted`` the distribution changes at ``SHIFT_AT``."""
    after = np.arange(n) >= SHIFT_AT if shifted else np.zeros(n, dtype=bool)
    if kind == "numeric":
        return rng.standard_normal(n) + 1.0 * after
    if kind == "categorical":
        before = rng.choice(CATS, size=n, p=[0.5, 0.3, 0.2])
        moved = rng.choice(CATS, size=n, p=[0.3, 0.3, 0.4])
        return [str(m if a else b) for a, b, m in zip(after, before, moved, strict=True)]
    if kind == "multivariate":
        joint = rng.multivariate_normal([0.0, 0.0], COV, n)
        return np.where(after[:, None], rng.standard_normal((n, 2)), joint)
    return (rng.random(n) < np.where(after, 0.4, 0.1)).astype(float)


def _one(kind: str, values: Any, i: int) -> Any:
    return values[i : i + 1]


def calibrated(kind: str, name: str) -> StreamDetector:
    rng = np.random.default_rng(42)
    return detector_class(kind, name).calibrate(
        _reference(kind, rng), Budget(RATE, rng, seed=0, categories=CATS))


def check_contract(kind: str, name: str, first_alarm: int,
                   factory: Callable[[], StreamDetector] | None = None) -> None:
    """Every clause of the contract for one detector (also used for the toy detector)."""
    det = factory() if factory else calibrated(kind, name)
    assert isinstance(det, StreamDetector) and det.kind == kind and det.name == name
    pristine = copy.deepcopy(det)

    # quiet on a stationary stream, within the budget
    quiet = _stream(kind, STATIONARY[kind], False, np.random.default_rng(7))
    assert len(det.update_many(quiet)) <= ALLOWED[kind]
    assert det.score >= 0.0

    # first alarm at an exact index after a seeded shift
    shifted = _stream(kind, 2000, True, np.random.default_rng(9))
    fresh = copy.deepcopy(pristine)
    alarms = fresh.update_many(shifted)
    assert alarms and alarms[0].row - SHIFT_AT == first_alarm, [a.row for a in alarms][:3]
    assert all(a.row >= SHIFT_AT for a in alarms)

    # snapshot / restore mid-stream: the same decisions and score as an uninterrupted run
    half = copy.deepcopy(pristine)
    first = half.update_many(shifted[: SHIFT_AT + first_alarm // 2])
    state = half.snapshot()
    half.update_many(shifted[:100])  # moves on; restore must bring it back
    half.restore(state)
    resumed = half
    rest = resumed.update_many(shifted[SHIFT_AT + first_alarm // 2 :])
    offset = SHIFT_AT + first_alarm // 2
    assert [(a.row, a.chart) for a in first] + [(a.row + offset, a.chart) for a in rest] == [
        (a.row, a.chart) for a in alarms]
    assert resumed.score == fresh.score

    # reset forgets: a reset detector decides as a fresh one
    resumed.reset()
    assert [(a.row, a.chart) for a in resumed.update_many(shifted)] == [
        (a.row, a.chart) for a in alarms]

    # score: below 1 before the first alarm, at least 1 at it
    one = copy.deepcopy(pristine)
    before: list[float] = []
    for i in range(SHIFT_AT + first_alarm + 1):
        fired = one.update_many(_one(kind, shifted, i))
        if i < SHIFT_AT + first_alarm:
            assert not fired and one.score < 1.0, (i, one.score)
            before.append(one.score)
        else:
            assert fired and one.score >= 1.0, one.score
            assert one.threshold == fired[0].threshold
    # and the score carries evidence (not a constant held below 1): after the shift, before
    # the alarm, it exceeds everything it showed on the stationary part
    assert max(before[SHIFT_AT:]) > max(before[:SHIFT_AT]), (
        max(before[:SHIFT_AT]), max(before[SHIFT_AT:]))


REGISTERED = [(kind, name) for kind, entries in DETECTORS.items() for name in entries]


def test_every_registered_detector_has_an_expected_first_alarm() -> None:
    assert sorted(REGISTERED) == sorted(FIRST_ALARM)


@pytest.mark.parametrize(("kind", "name"), REGISTERED, ids=[f"{k}:{n}" for k, n in REGISTERED])
def test_detector_contract(kind: str, name: str) -> None:
    check_contract(kind, name, FIRST_ALARM[(kind, name)])
