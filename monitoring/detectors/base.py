"""The detector contract every drift detector of driftgate implements.

A :class:`StreamDetector` watches one stream (a standardised numeric feature, a categorical
feature, the joint numeric features, or a model's error stream). Like river's
``DriftDetector``, its constructor parameters are public attributes (the calibrated setting) and
its mutable state lives in ``_private`` attributes rebuilt by ``_reset()``; what it concluded is
read from properties. Unlike river's, every detector reports a normalised :attr:`score`: 1.0 is
its calibrated alarm point and higher means more evidence of drift, whatever the statistic.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

__all__ = ["Alarm", "AlarmRun", "Budget", "DetectorGroup", "StreamDetector", "below_alarm",
           "KINDS"]

#: Stream kinds a detector can watch (the registry's sections).
KINDS = ("numeric", "categorical", "multivariate", "errors")

#: Largest score a detector that has not fired may report.
BELOW = math.nextafter(1.0, 0.0)


@dataclass(frozen=True)
class Alarm:
    """One alarm at ``row`` of a batch: the statistic that crossed its threshold.

    ``chart`` names the part of the detector that fired (for example ``"cusum_mean_up"``);
    single-statistic detectors use their registry name.

    Examples
    --------
    >>> Alarm(row=3, chart="adwin", statistic=0.4, threshold=0.002).row
    3
    """

    row: int
    chart: str
    statistic: float
    threshold: float


class AlarmRun(NamedTuple):
    """A stream's alarms in one batch, as a monitor needs them: the first (a new drift
    episode starts there at most), how many, and the row of the last.

    Examples
    --------
    >>> found = [Alarm(3, "adwin", 0.4, 0.002), Alarm(9, "adwin", 0.5, 0.002)]
    >>> run = AlarmRun.of(found)
    >>> run.first.row, run.alarms, run.last_row
    (3, 2, 9)
    >>> AlarmRun.of([]) is None
    True
    """

    first: Alarm
    alarms: int
    last_row: int

    @classmethod
    def of(cls, alarms: Sequence[Alarm]) -> AlarmRun | None:
        """The run of a stream's alarms (in row order); None when there are none."""
        return cls(alarms[0], len(alarms), alarms[-1].row) if alarms else None


@dataclass(frozen=True)
class Budget:
    """What a detector is calibrated for: its share of the false-alarm budget and context.

    Parameters
    ----------
    rate
        False-alarm probability per record for this stream (``None``: the detector's own
        default setting, for detectors without a budget-derived one).
    rng
        Random generator for calibration by simulation (and a detector's own sampling).
    seed
        Seed for a detector's own random choices.
    settings
        Extra settings the monitor passes from its configuration (e.g. ``cusum_k``).
    categories
        Known categories of a categorical stream.

    Examples
    --------
    >>> Budget(2e-6).settings
    {}
    """

    rate: float | None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    categories: Sequence[Any] = ()


def below_alarm(ratio: float, fired: bool) -> float:
    """A score of ``ratio`` that respects the contract: >= 1 iff the detector fired.

    For detectors that decide on information their score cannot see exactly (river's ADWIN
    tests bucket boundaries only every ``clock`` records): the score is the evidence ratio,
    held just below 1 until the detector itself fires and raised to 1 when it does.

    Examples
    --------
    >>> below_alarm(1.3, False) < 1.0, below_alarm(0.7, True), below_alarm(2.5, True)
    (True, 1.0, 2.5)
    """
    if not math.isfinite(ratio):
        ratio = 0.0 if ratio != ratio or ratio < 0 else math.inf
    return max(ratio, 1.0) if fired else min(max(ratio, 0.0), BELOW)


class StreamDetector(ABC):
    """Base of every drift detector: see the module docstring.

    Subclasses set :attr:`name` (their registry name) and :attr:`kind` (one of
    :data:`KINDS`), implement :meth:`calibrate`, :meth:`_reset`, :meth:`update_many`,
    :attr:`statistic`, :attr:`threshold` and :attr:`score`. :meth:`snapshot` and
    :meth:`restore` copy the ``_private`` state; a detector with other mutable state
    overrides them.

    Values fed to :meth:`update_many`: a numeric detector gets standardised values
    ``(x - mean) / sd`` (reference mean and sample sd, clipped to ``clip_z``, NaN for a missing
    value) and is calibrated on the raw reference values; a categorical one gets categories
    (``None`` for a missing value); a multivariate one gets rows of a matrix; an error one
    gets per-label errors.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "numeric"

    @classmethod
    @abstractmethod
    def calibrate(cls, reference: Any, budget: Budget) -> StreamDetector:
        """A detector set from the ``reference`` sample for the false-alarm ``budget``."""

    @abstractmethod
    def _reset(self) -> None:
        """(Re)build the mutable state."""

    def reset(self) -> None:
        """Forget everything seen; keep the calibrated setting."""
        self._reset()

    @abstractmethod
    def update_many(self, values: Any) -> list[Alarm]:
        """Feed values in order; return the alarms they raise (rows index ``values``)."""

    @classmethod
    def group(cls, detectors: Sequence[StreamDetector]) -> DetectorGroup:
        """A :class:`DetectorGroup` feeding ``detectors`` (all of this class) together; a
        detector may override it to vectorise across streams."""
        return DetectorGroup(detectors)

    @property
    @abstractmethod
    def statistic(self) -> float:
        """The current statistic in the detector's own units."""

    @property
    @abstractmethod
    def threshold(self) -> float:
        """The calibrated alarm point of :attr:`statistic`, in the same units."""

    @property
    @abstractmethod
    def score(self) -> float:
        """Normalised evidence: below 1 until the detector fires, at least 1 when it does."""

    def details(self) -> dict[str, Any]:
        """Extra JSON-able state for the monitor's status (e.g. every chart of a bank)."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        """A copy of the mutable state (restorable with :meth:`restore`)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k.startswith("_")}

    def restore(self, state: dict[str, Any]) -> None:
        """Return to a state from :meth:`snapshot`."""
        self.__dict__.update(copy.deepcopy(state))

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items()
                          if isinstance(v, int | float | str | bool | tuple))
        return f"{type(self).__name__}({shown})"


class RiverDetector(StreamDetector):
    """Base of the adapters of river's one-value-at-a-time detectors: river decides, the
    adapter follows each value with state of its own (:meth:`_follow`) to score the evidence.

    Subclasses implement :meth:`_make` (the river detector) and may override :meth:`_clear`
    (their own state, restarted with river's after an alarm), :meth:`_follow` and
    :attr:`skip_nan` (numeric streams skip missing values; error streams have none).
    """

    skip_nan: ClassVar[bool] = True

    @classmethod
    def calibrate(cls, reference: Any, budget: Budget) -> StreamDetector:
        """River's default setting (adapters with a budget-driven setting override this)."""
        return cls()

    @abstractmethod
    def _make(self) -> Any:
        """The river detector at this adapter's setting."""

    def _reset(self) -> None:
        self._det = self._make()
        self._clear()

    def _clear(self) -> None:
        """Forget the adapter's own state (river restarts on the update after an alarm)."""

    def _follow(self, x: float) -> None:
        """Update the adapter's own state with ``x``, after river has seen it."""

    def update_many(self, values: Any) -> list[Alarm]:
        alarms = []
        det = self._det
        for i, x in enumerate(np.asarray(values, dtype=float).reshape(-1).tolist()):
            if self.skip_nan and x != x:  # NaN: a missing value
                continue
            if det.drift_detected:
                self._clear()
            det.update(x)
            self._follow(x)
            if det.drift_detected:
                alarms.append(Alarm(i, self.name, self.statistic, self.threshold))
        return alarms


class DetectorGroup:
    """Streams of one detector class fed together: column ``j`` of a matrix to detector ``j``.

    A monitor builds one group per detector class at construction and keeps it, so a class
    that vectorises across streams (:class:`~monitoring.detectors.cusum.Cusum`) stacks its
    parameters and state once, not on every update. This default feeds each detector in turn.

    Examples
    --------
    >>> from monitoring.detectors.page_hinkley import PageHinkley
    >>> rng = np.random.default_rng(0)
    >>> dets = [PageHinkley.calibrate(rng.standard_normal(2000), Budget(1e-5, rng))
    ...         for _ in range(2)]
    >>> z = rng.standard_normal((600, 2))
    >>> z[300:, 1] += 2.0
    >>> [(j, a.row) for j, a in DetectorGroup(dets).update(z)][:1]
    [(1, 310)]
    """

    def __init__(self, detectors: Sequence[StreamDetector]) -> None:
        self.detectors = list(detectors)

    def update(self, values: np.ndarray) -> list[tuple[int, Alarm]]:
        """Feed ``values`` of shape ``(records, streams)``; return ``(stream, alarm)`` pairs,
        stream by stream, each stream's alarms in row order."""
        return [(j, a) for j, d in enumerate(self.detectors) for a in d.update_many(values[:, j])]

    def update_runs(self, values: np.ndarray) -> list[tuple[int, AlarmRun]]:
        """As :meth:`update`, summarised per stream that fired: ``(stream, run)`` pairs
        (:class:`AlarmRun`) ordered by first alarm (row, then stream), what a monitor needs
        during a sustained drift, when every chart fires every few records, without an
        object per alarm."""
        found: dict[int, list[Alarm]] = {}
        for j, alarm in self.update(values):
            found.setdefault(j, []).append(alarm)
        runs = [(j, run) for j, a in found.items() if (run := AlarmRun.of(a)) is not None]
        return sorted(runs, key=lambda p: (p[1].first.row, p[0]))
