"""Monitor configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitoring.detectors.registry import names
from monitoring.reference import Tolerance

__all__ = ["MonitorConfig"]


@dataclass(frozen=True)
class MonitorConfig:
    """Settings of a :class:`~monitoring.monitor.ModelMonitor`.

    Parameters
    ----------
    expected_run_time
        Expected number of records before a false drift alarm, across all monitored streams of
        the model (features, prediction, multivariate score).
    false_alarm_safety
        Thresholds are calibrated for ``false_alarm_safety / expected_run_time`` false alarms
        per record in total, not ``1 / expected_run_time``. The calibration is an estimate (tail
        extrapolation, a finite reference whose tails and moments are uncertain): single
        charts land at about 1.04 times their target on average over references, a whole
        5-feature model at 1.0 to 1.2 times, and the rate of any one reference scatters
        widely around that average. 0.7 keeps the measured rate below the target (``python -m
        monitoring.benchmark``: 0.69 per 100,000) for the price of a few records of
        detection delay (a factor ``s`` on the budget raises each threshold by
        ``ln(1/s) / theta``, about 0.7 for the mean charts at ``s = 0.7``, which a 0.5 sd
        shift climbs in about 3 records).
    prediction_weight, multivariate_weight
        Budget shares of a regressor's numeric prediction and of the multivariate score;
        every feature (and a classifier's predicted class) holds one share. The stream with
        ``w`` of ``W`` shares gets ``beta = s * (1 - (1 - 1/ERT) ** (w / W))`` false alarms per
        record (:func:`monitoring.calibration.share_rate`), so the streams together still
        honour ``expected_run_time``; with equal weights this is the issue's
        ``1 - (1 - 1/ERT) ** (1/d)``. A regressor's prediction is a function of the features
        and the multivariate score exists for joint changes with large signals (a broken
        correlation), so both get less, and the features' mean charts, where small shifts
        are won or lost, get more.
    numeric_detector
        Default detector for numeric streams, a name of the registry's ``numeric`` section
        (:mod:`monitoring.detectors.registry`): ``"cusum"`` (driftgate's calibrated CUSUM
        bank, fastest), ``"page_hinkley"``, ``"adwin"`` or ``"kswin"`` (river, budget-derived
        settings).
    detector_overrides
        Per-feature detector, e.g. ``{"age": "adwin"}``.
    cusum_k
        Reference value of the mean charts in standard deviations (optimal for a shift of
        ``2 * cusum_k``).
    clip_z
        Standardised values are clipped to ``[-clip_z, clip_z]`` before the CUSUM charts (in
        the calibration too), so one wild value is a data-quality issue, not a drift alarm.
    variance_clip_z
        The variance charts use ``min(z**2, variance_clip_z**2)``. Their false-alarm rate is
        governed by the tail of ``z**2``, which a reference of a few thousand rows pins down
        poorly beyond about 3 sd: unclipped (at ``clip_z``) they fired about 4 times their
        budget on Gaussian data; clipped at 3 they are calibrated and still catch a doubled
        standard deviation within tens of records.
    variance_k, variance_down_k
        Reference values of the variance-up and variance-down charts on ``z**2 - 1``
        (optimal for a doubling and a halving of the standard deviation).
    chart_weights
        Share of a feature's false-alarm budget for (mean up, mean down, variance up,
        variance down). The variance charts get little: a doubled standard deviation is a
        large signal (``z**2`` rises by 3 per record), so a 3x smaller budget costs it about
        one record, while the mean charts' delay for a 0.5 sd shift falls by ~4.5 records per
        doubling of their budget.
    multivariate
        Run the Mahalanobis CUSUM on the numeric features (needs two or more).
    multivariate_k
        Reference value of that chart on ``(d2 - p) / sqrt(2 p)``.
    category_window
        Sliding window of the categorical G-test.
    stats_window, stats_every
        Window statistics (KS, PSI, JS, Wasserstein) over the last ``stats_window`` values,
        computed every ``stats_every`` records.
    resolve_after, resolve_p
        Hysteresis: drift stays active until no alarm for ``resolve_after`` records *and* the
        recent window's test against the reference has a p-value above ``resolve_p``.
    performance_window
        Rolling window of labelled records for accuracy / F1 / MAE / RMSE.
    performance_tolerance
        A ``performance`` event fires when the rolling metric is worse than the card's by more
        than this (accuracy, F1) or by this fraction (MAE, RMSE).
    categorical_detector, multivariate_detector
        Detectors of categorical streams (``"gtest"``) and of the joint numeric features
        (``"mahalanobis_cusum"``).
    concept_detector
        ``"adwin"``, ``"ddm"`` or ``"hddm_a"`` on the error stream (the registry's ``errors``
        section).
    quality_events
        Emit one ``data_quality`` event per issue (counters are always kept).
    calibration_draws, calibration_streams, calibration_steps
        Size of the calibration simulation.
    seed
        Seed of every random choice (calibration, KSWIN).
    tolerance
        Default :class:`~monitoring.reference.Tolerance` of every stream (a model's card may
        set its own per model and per feature, ``drift_tolerance``): changes within it (a mean
        shift of 0.03 sd, a spread ratio of 1.05, a PSI of 0.01) raise no alarm, widened for
        the reference's own uncertainty at ``n`` distinct rows: the mean shift by
        :func:`~monitoring.reference.reference_margin` (for 5 to 30 features: 0 at 2,000
        rows, 0.01-0.02 at 1,000, 0.07-0.1 at 300; 0.33-0.35 at 178 and 0.45-0.54 at 65,
        where the mean charts are tuned for a 1 sd shift), the spread ratio and PSI to the
        standard errors of two samples of ``n`` rows. Costs on Gaussian streams: see the
        README ("Drift monitoring").

    Examples
    --------
    >>> config = MonitorConfig(expected_run_time=50_000, detector_overrides={"age": "adwin"})
    >>> config.detector_for("age"), config.detector_for("income")
    ('adwin', 'cusum')
    >>> MonitorConfig(concept_detector="magic")
    Traceback (most recent call last):
    ...
    ValueError: unknown concept detector 'magic'; choose one of adwin, ddm, hddm_a
    """

    expected_run_time: float = 100_000
    false_alarm_safety: float = 0.7
    numeric_detector: str = "cusum"
    detector_overrides: dict[str, str] = field(default_factory=dict)
    cusum_k: float = 0.25
    clip_z: float = 5.0
    variance_clip_z: float = 3.0
    variance_k: float = 0.85
    variance_down_k: float = 0.54
    chart_weights: tuple[float, float, float, float] = (0.47, 0.47, 0.05, 0.01)
    prediction_weight: float = 0.25
    multivariate_weight: float = 0.5
    multivariate: bool = True
    multivariate_k: float = 0.5
    category_window: int = 300
    stats_window: int = 1000
    stats_every: int = 1000
    resolve_after: int = 1000
    resolve_p: float = 0.01
    performance_window: int = 500
    performance_tolerance: float = 0.05
    concept_detector: str = "adwin"
    categorical_detector: str = "gtest"
    multivariate_detector: str = "mahalanobis_cusum"
    quality_events: bool = True
    calibration_draws: int = 32
    calibration_streams: int = 256
    calibration_steps: int = 1024
    seed: int = 0
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        checks = [("numeric", "numeric", "", self.numeric_detector),
                  *(("numeric", "numeric", f" for {f!r}", m)
                    for f, m in self.detector_overrides.items()),
                  ("categorical", "categorical", "", self.categorical_detector),
                  ("multivariate", "multivariate", "", self.multivariate_detector),
                  ("errors", "concept", "", self.concept_detector)]
        for kind, label, where, method in checks:
            if method not in names(kind):
                raise ValueError(f"unknown {label} detector {method!r}{where}; choose one of "
                                 f"{', '.join(names(kind))}")
        if self.expected_run_time <= 1:
            raise ValueError("expected_run_time must be > 1")
        if not 0 < self.false_alarm_safety <= 1:
            raise ValueError("false_alarm_safety must be in (0, 1]")

    def detector_for(self, feature: str) -> str:
        """The numeric detector used for ``feature`` (validated at construction)."""
        return self.detector_overrides.get(feature, self.numeric_detector)

    def detector_settings(self) -> dict[str, Any]:
        """The settings detectors read at calibration (``Budget.settings``)."""
        keys = ("cusum_k", "variance_k", "variance_down_k", "clip_z", "variance_clip_z",
                "chart_weights", "multivariate_k", "category_window", "calibration_draws",
                "calibration_streams", "calibration_steps")
        return {k: getattr(self, k) for k in keys}
