from __future__ import annotations

import numpy as np
from river import drift

from monitoring.detectors.cusum import CusumBank
from monitoring.detectors.page_hinkley import PageHinkley


def _stream(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(1000), rng.standard_normal(500) + 1.0])


def test_cusum_fires_at_known_index() -> None:
    z = _stream(42)
    bank = CusumBank(np.array([20.0, 20.0]), np.array([0, 0]))
    alarms = bank.update_many(np.column_stack([z - 0.25, -z - 0.25]))
    assert [(a.row, a.chart) for a in alarms][:3] == [(1022, "0"), (1052, "0"), (1076, "0")]
    assert all(a.statistic > a.threshold for a in alarms)


def test_batch_equals_one_by_one() -> None:
    z = _stream(3)
    y = np.column_stack([z - 0.25, -z - 0.25, z * z - 1.85])
    h = np.array([15.0, 15.0, 12.0])
    batch = CusumBank(h, np.array([0, 0, 0])).update_many(y)
    single = CusumBank(h, np.array([0, 0, 0]))
    one = []
    for i in range(len(z)):
        one += [(i, a.chart) for a in single.update_many(y[i : i + 1])]
    assert [(a.row, a.chart) for a in batch] == one
    assert len(one) > 3


def test_sustained_drift_on_every_group_batch_equals_one_by_one() -> None:
    """Many groups firing again and again inside one batch (the compiled path), uneven
    groups, a switched-off chart and missing values: the same alarms and final sums as the
    plain recursion record by record."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((3000, 6))
    z[1000:] += np.array([1.0, 0.5, 3.0, 0.0, -1.0, 2.0])  # every group drifts but one
    z[rng.random(z.shape) < 0.02] = np.nan
    y = np.column_stack([z - 0.25, -z - 0.25])
    h = rng.uniform(4.0, 15.0, size=12)
    h[7] = np.inf
    groups = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 4])
    batch = CusumBank(h, groups)
    got = [(a.row + start, a.chart) for start in (0, 1000, 2500)
           for a in batch.update_many(y[start : {0: 1000, 1000: 2500, 2500: 3000}[start]])]
    single = CusumBank(h, groups)
    want = []
    for i in range(len(y)):
        want += [(i, a.chart) for a in single.update_many(y[i : i + 1])]
    assert got == want
    assert len(want) > 500
    assert np.allclose(batch.statistics, single.statistics)


def test_group_reset() -> None:
    bank = CusumBank(np.array([1.0, 100.0, 1.0]), np.array([0, 0, 1]))
    bank.update_many(np.array([[0.6, 5.0, 0.1], [0.6, 5.0, 0.1]]))
    assert bank.statistics.tolist() == [0.0, 0.0, 0.2]


def test_page_hinkley_calibrated_is_quiet_and_river_default_is_not() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal(20_000)
    cal = PageHinkley(threshold=24.0)
    raw = drift.PageHinkley()
    assert cal.update_many(z) == []
    fired = 0
    for v in z.tolist():
        raw.update(v)
        fired += raw.drift_detected
    assert fired > 5


def test_drift_that_stops_between_batches_batch_equals_one_by_one() -> None:
    """Batches that start, hold and end a drift, cut anywhere: alarms and sums match the
    plain recursion record by record throughout."""
    rng = np.random.default_rng(11)
    z = rng.standard_normal((5000, 8))
    z[1000:2600] += 1.5
    y = np.column_stack([z - 0.25, -z - 0.25])
    h = rng.uniform(15.0, 25.0, size=16)
    groups = np.tile(np.arange(8), 2)
    batch = CusumBank(h, groups)
    cuts = [0, 900, 1500, 2100, 2700, 3500, 4200, 5000]
    got, fired = [], []
    for a, b in zip(cuts, cuts[1:], strict=False):
        found = batch.update_many(y[a:b])
        got += [(x.row + a, x.chart) for x in found]
        fired.append(bool(found))
    single = CusumBank(h, groups)
    want = []
    for i in range(len(y)):
        want += [(i, a.chart) for a in single.update_many(y[i : i + 1])]
    assert got == want
    assert fired == [False, True, True, True, False, False, False]
    assert np.allclose(batch.statistics, single.statistics)


def test_cusum_group_runs_summarise_its_alarms() -> None:
    """The vectorised per-stream summary of a sustained drift equals the summary of every
    alarm (the contract's default), and leaves the members in the same state."""
    import copy

    from monitoring.detectors import AlarmRun, Budget, DetectorGroup
    from monitoring.detectors.cusum import Cusum, CusumGroup

    rng = np.random.default_rng(2)
    dets = [Cusum.calibrate(rng.standard_normal(2000), Budget(1e-5, rng)) for _ in range(4)]
    z = rng.standard_normal((3000, 4))
    z[1000:, [0, 2]] += 1.0
    z[2000:, 3] *= 2.0
    a, b = CusumGroup(copy.deepcopy(dets)), CusumGroup(copy.deepcopy(dets))
    for part in (z[:1500], z[1500:]):
        runs = a.update_runs(part)
        every = b.update(part)
        assert runs == DetectorGroup.update_runs(_Replay(every), part)  # the default
        assert [j for j, _ in runs]
        assert sum(r.alarms for _, r in runs) == len(every)
        assert [d.score for d in a.detectors] == [d.score for d in b.detectors]
    first = {j: a for j, a in reversed(every)}  # each stream's first alarm of the last part
    assert runs == sorted(((j, AlarmRun(first[j], sum(i == j for i, _ in every),
                                        max(x.row for i, x in every if i == j)))
                           for j in first), key=lambda p: (p[1].first.row, p[0]))


class _Replay:
    """A group whose ``update`` answers with alarms found before (for the default runs)."""

    def __init__(self, alarms: list) -> None:
        self.alarms = alarms

    def update(self, values: np.ndarray) -> list:
        return self.alarms
