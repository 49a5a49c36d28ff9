"""Window statistics for dashboards: KS, PSI, Jensen-Shannon and Wasserstein distances."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

__all__ = ["NumericReference", "categorical_window_stats", "psi"]

_EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two proportion vectors (floored at 1e-4).

    Examples
    --------
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])), 4)
    0.0405
    """
    e = np.maximum(np.asarray(expected, dtype=float), _EPS)
    a = np.maximum(np.asarray(actual, dtype=float), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


class NumericReference:
    """Reference distribution of one numeric stream, binned once for fast window statistics.

    Parameters
    ----------
    values
        Reference values (NaN ignored).
    bins
        Number of quantile bins for PSI and Jensen-Shannon.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = NumericReference(rng.standard_normal(2000))
    >>> s = ref.compare(rng.standard_normal(1000) + 1.0)
    >>> s["ks_p"] < 1e-6, s["psi"] > 0.5, round(s["wasserstein"], 1)
    (True, True, 1.0)
    """

    def __init__(self, values: np.ndarray, bins: int = 10) -> None:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        self.sorted = np.sort(v)
        self.std = float(v.std(ddof=1)) if v.size > 1 else 1.0
        if not self.std > 0:
            self.std = 1.0
        self.edges = (np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])) if v.size
                      else np.empty(0))
        self.props = self._props(self.sorted)

    def _props(self, v: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(self.edges, v, side="right"),
                             minlength=self.edges.size + 1).astype(float)
        return counts / max(counts.sum(), 1.0)

    def compare(self, window: np.ndarray) -> dict[str, float]:
        """KS statistic and p-value, PSI, JS distance, Wasserstein / reference std.

        KS and Wasserstein come from one pass over the two empirical CDFs (what
        ``scipy.stats.ks_2samp`` and ``wasserstein_distance`` compute, without their per-call
        overhead, which made window statistics the monitor's largest cost); the p-value is
        Kolmogorov's limit with Stephens' small-sample correction.
        """
        w = np.asarray(window, dtype=float)
        w = w[np.isfinite(w)]
        if w.size < 2 or self.sorted.size < 2:
            return {"ks": 0.0, "ks_p": 1.0, "psi": 0.0, "js": 0.0, "wasserstein": 0.0}
        w = np.sort(w)
        ks, wasserstein = _ecdf_distances(self.sorted, w)
        n1, n2 = self.sorted.size, w.size
        en = math.sqrt(n1 * n2 / (n1 + n2))
        p = self._props(w)
        return {
            "ks": ks,
            "ks_p": float(special.kolmogorov((en + 0.12 + 0.11 / en) * ks)),
            "psi": psi(self.props, p),
            "js": float(distance.jensenshannon(self.props, p, base=2.0)),
            "wasserstein": wasserstein / self.std,
        }


def _ecdf_distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Largest gap (KS statistic) and area between (Wasserstein-1 distance) the empirical CDFs
    of two sorted samples.

    Examples
    --------
    >>> ks, w1 = _ecdf_distances(np.array([0.0, 1.0]), np.array([0.5, 1.5]))
    >>> ks, w1
    (0.5, 0.5)
    """
    both = np.concatenate([a, b])
    both.sort(kind="mergesort")
    fa = np.searchsorted(a, both, side="right") / a.size
    fb = np.searchsorted(b, both, side="right") / b.size
    gap = np.abs(fa - fb)
    return float(gap.max()), float(np.dot(gap[:-1], np.diff(both)))


def categorical_window_stats(
    ref_props: np.ndarray, codes: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """Chi-square p-value, PSI and JS distance of window category ``codes`` vs the reference.

    Examples
    --------
    >>> s = categorical_window_stats(np.array([0.5, 0.5, 0.0]), [0] * 60 + [1] * 40)
    >>> round(s["psi"], 3), round(s["chi2_p"], 3)
    (0.041, 0.135)
    """
    ref_props = np.asarray(ref_props, dtype=float)
    c = np.bincount(np.asarray(codes, dtype=int), minlength=ref_props.size).astype(float)
    n = c.sum()
    if n == 0:
        return {"chi2": 0.0, "chi2_p": 1.0, "psi": 0.0, "js": 0.0}
    p = c / n
    e = np.maximum(ref_props, _EPS)
    e = e / e.sum()
    chi2 = float(np.sum((c - n * e) ** 2 / (n * e)))
    return {
        "chi2": chi2,
        "chi2_p": float(stats.chi2.sf(chi2, max(ref_props.size - 1, 1))),
        "psi": psi(ref_props, p),
        "js": float(distance.jensenshannon(ref_props, p, base=2.0)),
    }
