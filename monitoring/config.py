"""Monitor configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MonitorConfig", "NUMERIC_DETECTORS"]

NUMERIC_DETECTORS = ("cusum", "page_hinkley", "adwin", "kswin")


@dataclass(frozen=True)
class MonitorConfig:
    """Settings of a :class:`~monitoring.monitor.ModelMonitor`.

    Parameters
    ----------
    expected_run_time
        Expected number of records before a false drift alarm, across all monitored streams of
        the model (features, prediction, multivariate score).
    numeric_detector
        Default detector for numeric streams: ``"cusum"`` (driftgate's calibrated CUSUM bank,
        fastest), ``"page_hinkley"``, ``"adwin"`` or ``"kswin"`` (river, budget-derived settings).
    detector_overrides
        Per-feature detector, e.g. ``{"age": "adwin"}``.
    cusum_k
        Reference value of the mean charts in standard deviations (optimal for a shift of
        ``2 * cusum_k``).
    clip_z
        Standardised values are clipped to ``[-clip_z, clip_z]`` before the CUSUM charts (in
        the calibration too), so one wild value is a data-quality issue, not a drift alarm.
    variance_k, variance_down_k
        Reference values of the variance-up and variance-down charts on ``z**2 - 1``
        (optimal for a doubling and a halving of the standard deviation).
    chart_weights
        Share of a feature's false-alarm budget for (mean up, mean down, variance up,
        variance down).
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
    concept_detector
        ``"adwin"``, ``"ddm"`` or ``"hddm_a"`` on the error stream.
    quality_events
        Emit one ``data_quality`` event per issue (counters are always kept).
    calibration_draws, calibration_streams, calibration_steps
        Size of the calibration simulation.
    seed
        Seed of every random choice (calibration, KSWIN).
    """

    expected_run_time: float = 100_000
    numeric_detector: str = "cusum"
    detector_overrides: dict[str, str] = field(default_factory=dict)
    cusum_k: float = 0.25
    clip_z: float = 5.0
    variance_k: float = 0.85
    variance_down_k: float = 0.54
    chart_weights: tuple[float, float, float, float] = (0.4, 0.4, 0.15, 0.05)
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
    quality_events: bool = True
    calibration_draws: int = 32
    calibration_streams: int = 256
    calibration_steps: int = 1024
    seed: int = 0

    def detector_for(self, feature: str) -> str:
        """The numeric detector used for ``feature``."""
        method = self.detector_overrides.get(feature, self.numeric_detector)
        if method not in NUMERIC_DETECTORS:
            raise ValueError(f"unknown numeric detector {method!r} for {feature!r}")
        return method
