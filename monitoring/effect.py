"""What moved and by how much: the effect behind a drift alarm, with a 95% interval.

A drift event says *that* a stream changed; a user deciding whether to care needs *how much*.
For a numeric stream: the shift of the mean in reference standard deviations and the ratio of
spreads over the values since the change (its start estimated by maximum likelihood among the
recent values up to the alarm); for a categorical stream: the population stability index (PSI)
of the frequencies in the detector's window against the reference's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["numeric_effect", "categorical_effect", "change_start", "RECENT"]

#: Recent values an effect is estimated from (the alarm's record and those before it).
RECENT = 300


def change_start(z: np.ndarray, spread: bool = False, least: int = 10) -> int:
    """Most likely start of a change in standardised values ``z`` (pre-change mean 0 and
    sd 1): the ``t`` maximising ``(sum_{s>=t} y_s)**2 / (n - t)`` for ``y = z`` (a mean shift)
    or ``y = z**2 - 1`` (a spread change), at least ``least`` values from the end.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> change_start(np.concatenate([rng.standard_normal(150), rng.standard_normal(50) + 1]))
    150
    """
    n = z.size
    if n <= least:
        return 0
    y = z * z - 1.0 if spread else z
    tail = np.cumsum(y[::-1])[::-1]  # sum from t to the end
    length = n - np.arange(n)
    score = tail**2 / length
    return int(np.argmax(score[: n - least + 1]))


def numeric_effect(z: np.ndarray, spread: bool = False) -> dict[str, float | int | list[float]]:
    """Mean shift (sd) and spread ratio of standardised values ``z`` since the change
    (:func:`change_start`; ``spread``: locate a spread change rather than a mean shift), each
    with a 95% interval (normal for the mean, chi-square for the spread); ``n``: values used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = numeric_effect(rng.standard_normal(200) * 2.0 + 1.0)   # changed 200 values ago
    >>> e["mean_shift"], e["mean_shift_ci"], e["spread_ratio"], e["spread_ratio_ci"], e["n"]
    (1.09, [0.808, 1.372], 1.941, [1.76, 2.164], 182)
    """
    z = z[np.isfinite(z)]
    z = z[change_start(z, spread):]
    n = int(z.size)
    if n < 2:
        return {"n": n}
    m, s = float(z.mean()), float(z.std(ddof=1))
    half = 1.96 * s / math.sqrt(n)
    lo, hi = stats.chi2.ppf([0.975, 0.025], n - 1)
    return {"mean_shift": round(m, 3), "mean_shift_ci": [round(m - half, 3), round(m + half, 3)],
            "spread_ratio": round(s, 3),
            "spread_ratio_ci": [round(s * math.sqrt((n - 1) / lo), 3),
                                round(s * math.sqrt((n - 1) / hi), 3)],
            "n": n}


def _psi(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    eps = 1e-4
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return np.sum((p - q) * np.log(p / q), axis=-1)


def categorical_effect(
    codes: np.ndarray, reference: np.ndarray, rng: np.random.Generator | None = None,
    draws: int = 200,
) -> dict[str, float | int | list[float]]:
    """PSI of the category ``codes`` (bins of ``reference``'s probabilities) against the
    reference, with a 95% percentile interval from a multinomial bootstrap of the recent
    frequencies.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> codes = rng.choice(3, size=200, p=[0.2, 0.3, 0.5])
    >>> e = categorical_effect(codes, np.array([0.5, 0.3, 0.2]), rng)
    >>> e["psi"] > 0.3, e["psi_ci"][0] < e["psi"] < e["psi_ci"][1], e["n"]
    (True, True, 200)
    """
    codes = codes[codes >= 0]
    n = int(codes.size)
    k = reference.size
    if n == 0:
        return {"n": 0}
    freq = np.bincount(np.minimum(codes, k - 1), minlength=k) / n
    rng = rng or np.random.default_rng(0)
    boot = rng.multinomial(n, freq, size=draws) / n
    lo, hi = np.quantile(_psi(boot, reference), [0.025, 0.975])
    return {"psi": round(float(_psi(freq, reference)), 4),
            "psi_ci": [round(float(lo), 4), round(float(hi), 4)], "n": n}
