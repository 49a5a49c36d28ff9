"""Threshold calibration by simulation on resamples of the reference sample.

Two ideas make the calibration both fast and honest:

* **Parameter uncertainty.** Live traffic is a *different* sample of the population than the
  reference, so the reference statistics (mean, standard deviation, category frequencies,
  covariance) are themselves estimates. Every simulated stream therefore uses statistics
  re-estimated on a bootstrap resample of the reference while its values are drawn from the
  reference itself: the gap between the two mimics the gap between the reference and the
  population.
* **Tail extrapolation.** A CUSUM statistic is a reflected random walk; the probability that one
  excursion exceeds ``h`` decays like ``exp(-theta * h)`` where ``theta > 0`` solves
  ``E[exp(theta * Y)] = 1`` for the increment ``Y`` (Cramer-Lundberg). ``theta`` is computed
  exactly for every bootstrap draw from the empirical moment generating function; the
  proportionality constant is measured by a vectorised simulation at moderate levels, where
  excursions above the level are plentiful. The threshold for a false-alarm rate of ~1e-6 per
  record is then solved without simulating millions of records.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "per_stream_rate",
    "share_rate",
    "stream_rates",
    "quadrature_standardizers",
    "sampling_grid",
    "log_arl",
    "cramer_theta",
    "calibrate_cusum",
    "calibrate_window_gtest",
]


def per_stream_rate(expected_run_time: float, n_streams: int) -> float:
    """False-alarm probability per record for one of ``n_streams`` monitored streams.

    ``beta = 1 - (1 - 1/ERT) ** (1/d)``, so that the union of ``d`` independent streams has an
    expected run time of ``ERT`` records before its first false alarm.

    Examples
    --------
    >>> round(per_stream_rate(100_000, 5) * 1e6, 3)
    2.0
    """
    if expected_run_time <= 1:
        raise ValueError("expected_run_time must be > 1")
    d = max(int(n_streams), 1)
    return float(-math.expm1(math.log1p(-1.0 / expected_run_time) / d))


def share_rate(
    expected_run_time: float, weight: float, total_weight: float, safety: float = 1.0
) -> float:
    """False-alarm probability per record of a stream holding ``weight`` of ``total_weight``
    budget shares.

    ``beta = safety * (1 - (1 - 1/ERT) ** (weight / total_weight))``: the streams' no-alarm
    probabilities multiply to ``(1 - 1/ERT) ** safety``-ish, i.e. independent streams jointly
    have an expected run time of at least ``ERT / safety`` records. With equal weights and
    ``safety = 1`` this is :func:`per_stream_rate`.

    Examples
    --------
    >>> round(share_rate(100_000, 1.0, 5.0) * 1e6, 3)
    2.0
    >>> round(share_rate(100_000, 0.5, 5.0, safety=0.5) * 1e6, 3)
    0.5
    """
    if expected_run_time <= 1:
        raise ValueError("expected_run_time must be > 1")
    if not 0 < safety <= 1:
        raise ValueError("safety must be in (0, 1]")
    if total_weight <= 0 or weight < 0:
        raise ValueError("weights must be positive")
    return float(-math.expm1(math.log1p(-1.0 / expected_run_time) * weight / total_weight)
                 * safety)


def stream_rates(
    expected_run_time: float, weights: dict[str, float], safety: float = 1.0
) -> dict[str, float]:
    """Per-record false-alarm rate of every stream from its budget share (see
    :func:`share_rate`); the rates sum to about ``safety / ERT``.

    Examples
    --------
    >>> r = stream_rates(100_000, {"a": 1.0, "b": 1.0, "__prediction__": 0.5}, safety=0.8)
    >>> {k: round(v * 1e6, 2) for k, v in r.items()}
    {'a': 3.2, 'b': 3.2, '__prediction__': 1.6}
    """
    total = sum(weights.values())
    return {k: share_rate(expected_run_time, w, total, safety) for k, w in weights.items()}


def quadrature_standardizers(
    x: np.ndarray, n_mean: int = 10, n_scale: int = 5, n: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means and standard deviations a reference of ``n`` rows (default ``len(x)``; fewer for
    a reference whose rows are copies, see :func:`monitoring.reference.reference_size`) could
    have produced, with their probabilities.

    A Gauss-Hermite grid over the sampling distribution of the reference mean (normal, standard
    error ``s / sqrt(n)``) and of its standard deviation (log-normal, with the sample's
    kurtosis). The false-alarm rate averaged over the grid with the returned weights is the rate
    a user with a random reference of this size gets. That rate is an average of
    ``exp(theta * shift)`` terms dominated by the grid's tails; Gauss-Hermite weights integrate
    it exactly to many digits, where equally weighted mid-point quantiles of the same size
    under-weight the tails (by about 7% for a 0.25 sd mean chart on a 2,000-row reference).

    Returns ``(means, sds, weights)``, each of shape ``(n_mean * n_scale,)``; weights sum to 1.

    Examples
    --------
    >>> m, s, w = quadrature_standardizers(np.random.default_rng(0).standard_normal(400))
    >>> m.shape, round(float(w.sum()), 12), bool(abs(float(w @ m)) < 0.1)
    ((50,), 1.0, True)
    """
    n = max(min(int(n), x.shape[0]) if n else x.shape[0], 2)
    mean, sd = float(x.mean()), float(x.std(ddof=1)) or 1.0
    kurt = float(np.mean(((x - mean) / sd) ** 4)) if n > 3 else 3.0
    log_sd = math.sqrt(max(kurt - 1.0, 0.5) / (4.0 * n))
    return sampling_grid(mean, sd / math.sqrt(n), sd, log_sd, n_mean, n_scale)


def sampling_grid(
    mean: float, mean_se: float, sd: float, log_sd_se: float, n_mean: int, n_scale: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite product grid over a normal mean ``N(mean, mean_se**2)`` and a log-normal
    standard deviation ``sd * exp(N(0, log_sd_se**2))``: ``(means, sds, weights)``.

    Examples
    --------
    >>> m, s, w = sampling_grid(0.0, 0.1, 1.0, 0.05, 8, 3)
    >>> round(float(w @ np.exp(m)), 6) == round(float(np.exp(0.1**2 / 2)), 6)
    True
    """
    qm, wm = np.polynomial.hermite_e.hermegauss(n_mean)
    qs, ws = np.polynomial.hermite_e.hermegauss(n_scale)
    mm, ss = np.meshgrid(mean + mean_se * qm, sd * np.exp(log_sd_se * qs), indexing="ij")
    w = np.outer(wm, ws).ravel()
    return mm.ravel(), ss.ravel(), w / w.sum()


def cramer_theta(y: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Positive root ``theta`` of ``mean(exp(theta * y)) = 1`` for each row of ``y``.

    ``y`` has shape ``(draws, n)``; rows whose mean is not negative get ``floor`` (such a chart
    drifts upward under the null, so only a very high threshold can keep it quiet).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((1, 200_000)) - 0.25   # Gaussian: theta = 2 * 0.25
    >>> float(np.round(cramer_theta(y)[0], 2))
    0.5
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n = y.shape[1]
    mu = y.mean(axis=1)
    var = y.var(axis=1) + 1e-12
    theta = np.where(mu < 0, np.clip(-2.0 * mu / var, floor, 50.0), floor)
    ok = mu < 0
    if not ok.any():
        return theta

    def f_and_df(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = t[:, None] * y
        amax = a.max(axis=1, keepdims=True)
        w = np.exp(a - amax)
        sw = w.sum(axis=1)
        f = np.log(sw) + amax[:, 0] - math.log(n)
        df = (w * y).sum(axis=1) / sw
        return f, df

    # Start above the root (f > 0) so Newton on the convex function converges monotonically.
    hi = theta * 2.0
    for _ in range(60):
        f, _ = f_and_df(hi)
        bad = ok & (f <= 0)
        if not bad.any():
            break
        hi = np.where(bad, hi * 2.0, hi)
    t = hi
    for _ in range(50):
        f, df = f_and_df(t)
        step = np.where(ok & (df > 0), f / np.maximum(df, 1e-12), 0.0)
        t = np.maximum(t - step, floor)
        if np.all(np.abs(step) < 1e-9 * np.maximum(t, 1.0)):
            break
    return np.where(ok, np.maximum(t, floor), floor)


def _cycle_maxima_by_stream(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maxima of the excursions of ``S_t = max(0, S_{t-1} + y_t)`` along axis 1 (S_0 = 0),
    and the row (stream) of each."""
    v = np.cumsum(y, axis=1)
    s = v - np.minimum(np.minimum.accumulate(v, axis=1), 0.0)
    # An excursion starts after a zero, and at the start of every stream.
    start = np.empty(s.shape, dtype=bool)
    start[:, 0] = True
    start[:, 1:] = s[:, :-1] <= 0.0
    flat = s.ravel()
    starts = np.flatnonzero(start.ravel())
    mx = np.maximum.reduceat(flat, starts)
    rows = starts // s.shape[1]
    keep = mx > 0
    return mx[keep], rows[keep]


def log_arl(theta: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log of Siegmund's in-control ARL shape ``(exp(x) - x - 1) / (theta**2 / 2)``,
    ``x = theta * b``; finite for ``theta -> 0`` (where it tends to ``b**2``).

    For Gaussian increments ``N(-mu, sigma**2)``: ``theta = 2 mu / sigma**2`` and
    ``b = h + 1.166 sigma``.

    Examples
    --------
    >>> round(float(np.exp(log_arl(np.array(1.0), np.array(9.654 + 1.166)))), -2)  # k = 0.5
    100000.0
    """
    x = theta * b
    small = x < 1e-3
    xs = np.where(small, 1.0, x)
    big = xs + np.log1p(-(1.0 + xs) * np.exp(-xs))
    series = np.log(x * x / 2.0 * (1.0 + x / 3.0) + 1e-300)
    return np.where(small, series, big) - np.log(theta * theta / 2.0)


def _anchor_level(
    maxima: np.ndarray, weights: np.ndarray, count: int, floor_rate: float
) -> tuple[float, float]:
    """The highest excursion level whose weighted exceedance rate rests on an effective
    ``count`` excursions (Kish's ``(sum w)**2 / sum w**2``), and that rate."""
    if maxima.size == 0:
        return 0.0, floor_rate
    order = np.argsort(maxima)[::-1]
    cw = np.cumsum(weights[order])
    cw2 = np.cumsum(weights[order] ** 2)
    effective = cw * cw / np.maximum(cw2, 1e-300)
    i = int(np.argmax(effective >= count)) if (effective >= count).any() else maxima.size - 1
    return float(maxima[order[i]]), float(cw[i])


def calibrate_cusum(
    increments: np.ndarray,
    rate: float,
    rng: np.random.Generator,
    n_streams: int = 256,
    n_steps: int = 1024,
    anchor_count: int = 50,
    weights: np.ndarray | None = None,
) -> float:
    """Threshold ``h`` of a one-sided CUSUM with a false-alarm ``rate`` per record.

    Parameters
    ----------
    increments
        Array ``(draws, n)``: the CUSUM increment of every reference value, standardised with
        the statistics of one draw per row (see the module docstring).
    rate
        Target probability of a false alarm per record for this chart, averaged over the draws.
    rng
        Random generator for the simulated streams (resampled reference values).
    n_streams, n_steps
        Size of the vectorised simulation (``n_streams`` parallel streams of ``n_steps``; the
        streams are dealt to the draws in turn).
    anchor_count
        The highest excursion level whose weighted exceedance count rests on this many
        effective excursions anchors the tail model.
    weights
        Probability of each draw (default: equal), e.g. from :func:`quadrature_standardizers`.

    Returns
    -------
    float
        The threshold ``h``; the chart alarms when ``S_t > h``.

    Notes
    -----
    Tail model: a draw whose increments have Cramer-Lundberg root ``theta_b`` fires about once
    per ``ARL_b(h)`` records, Siegmund's approximation ``(exp(x) - x - 1) / (theta_b**2 / 2)``
    with ``x = theta_b * (h + 1.166 sigma_b)``, which stays finite for draws whose increments
    barely drift. The rate averaged over draws is ``C * sum_b w_b / ARL_b(h)``; ``C`` is fitted
    to the simulated excursions at the anchor level, each excursion weighted by its draw's
    ``w_b`` over the number of streams the draw was given.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.standard_normal((1, 50_000)) - 0.5        # Gaussian, k = 0.5
    >>> h = calibrate_cusum(y, 1e-5, rng)
    >>> 9.3 < h < 10.0   # Siegmund's approximation gives 9.65 for ARL0 = 100,000
    True
    """
    inc = np.atleast_2d(np.asarray(increments, dtype=float))
    draws, n = inc.shape
    w = np.full(draws, 1.0 / draws) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (draws,) or not np.all(w >= 0) or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per draw")
    w = w / w.sum()
    theta = cramer_theta(inc)
    group = np.arange(n_streams) % draws
    per_group = np.bincount(group, minlength=draws).astype(float)
    idx = rng.integers(0, n, size=(n_streams, n_steps))
    y = inc[group[:, None], idx]
    mx, owner = _cycle_maxima_by_stream(y)
    # Each excursion counts w_b / (streams given to draw b) / steps towards the average rate.
    ex_w = (w[group] / per_group[group] / n_steps)[owner]
    anchor, sim_rate = _anchor_level(mx, ex_w, anchor_count, 1.0 / (n_streams * n_steps))
    drawn = per_group > 0
    th = theta[drawn]
    log_w = np.log(np.maximum(w[drawn], 1e-300))
    overshoot = 1.166 * inc[drawn].std(axis=1)

    def log_model(h: float) -> float:
        a = log_w - log_arl(th, h + overshoot)
        amax = a.max()
        return float(amax + np.log(np.sum(np.exp(a - amax))))

    log_c = math.log(sim_rate) - log_model(anchor)
    target = math.log(rate)
    if log_c + log_model(anchor) <= target:
        return anchor
    lo, hi = anchor, anchor + 1.0
    while log_c + log_model(hi) > target:
        hi = anchor + 2.0 * (hi - anchor)
        if hi > 1e7:
            return float(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if log_c + log_model(mid) > target:
            lo = mid
        else:
            hi = mid
    return float(hi)


def calibrate_window_gtest(
    probs: np.ndarray,
    n_reference: int,
    window: int,
    rate: float,
    rng: np.random.Generator,
    n_streams: int = 32,
    n_steps: int = 4096,
    anchor_count: int = 30,
) -> float:
    """Threshold of a sliding-window G-test on category frequencies.

    The statistic at each record is ``G = 2 * sum(O * log(O / E))`` over the last ``window``
    records against the smoothed reference frequencies ``probs``. Simulated streams draw their
    categories from a bootstrap resample of the reference frequencies (parameter uncertainty).
    The rate at which ``G`` first exceeds a level (after a window refill, as the detector does
    after an alarm) is measured at moderate levels and extrapolated along the chi-square tail
    with ``len(probs) - 1`` degrees of freedom, scaled by ``1 + window / n_reference``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = calibrate_window_gtest(np.array([0.5, 0.3, 0.2]), 2000, 200, 2e-6, rng)
    >>> 20.0 < g < 45.0
    True
    """
    probs = np.asarray(probs, dtype=float)
    probs = probs / probs.sum()
    k = probs.size
    df = max(k - 1, 1)
    scale = 1.0 + window / max(n_reference, 1)
    exp_counts = probs * window
    streams_p = rng.dirichlet(probs * n_reference + 0.5, size=n_streams)
    cum = np.cumsum(streams_p, axis=1)
    u = rng.random((n_streams, n_steps + window))
    cats = (u[:, :, None] > cum[:, None, :]).sum(axis=2)
    cats = np.minimum(cats, k - 1)
    onehot = np.zeros((n_streams, n_steps + window + 1, k))
    np.put_along_axis(onehot[:, 1:, :], cats[:, :, None], 1.0, axis=2)
    c = np.cumsum(onehot, axis=1)
    counts = c[:, window:, :] - c[:, :-window, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log(counts / exp_counts), 0.0)
    g = 2.0 * terms.sum(axis=2)
    gmax = np.sort(g.ravel())
    # Upcrossings of the anchor level approximate alarms (the window refills after each).
    anchor = float(gmax[-min(anchor_count * window // 4, gmax.size - 1)])
    above = g > anchor
    up = above[:, 1:] & ~above[:, :-1]
    ups = max(int(up.sum()), 1)
    sim_rate = ups / float(g.size)
    ratio = sim_rate / max(stats.chi2.sf(anchor / scale, df), 1e-300)
    target_sf = rate / ratio
    if target_sf >= stats.chi2.sf(anchor / scale, df):
        return anchor
    return float(stats.chi2.isf(target_sf, df) * scale)
