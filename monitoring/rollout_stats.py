"""Pure statistics of a rollout's gates: the canary arm against the default arm.

Every test answers "is the canary WORSE than the default?" over one window, and every
p-value is compared with :func:`look_alpha`, the share of the overall significance level
spent on the ``k``-th look (a rollout looks many times; without a correction its false
rollback rate would grow with every evaluation). Labelled performance uses an always-valid
p-value (:class:`MixtureSPRT`), which is valid at any stopping time by construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from monitoring.names import json_value

__all__ = [
    "GateResult", "MixtureSPRT", "agreement_test", "answers_test", "drift_gate", "g_test",
    "ks_test", "latency_gate", "look_alpha", "p99", "share_deficit",
]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict: ``passed`` is False only on evidence that the canary is worse."""

    gate: str
    passed: bool
    statistic: float | None
    p_value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"gate": self.gate, "passed": self.passed, "statistic": _finite(self.statistic),
                "p_value": _finite(self.p_value), "threshold": _finite(self.threshold),
                "detail": self.detail}


def _finite(value: float | None) -> float | None:
    return None if value is None else json_value(float(value))


def look_alpha(alpha: float, look: int) -> float:
    """The level of look ``look`` (1, 2, ...): ``alpha * 6 / (pi^2 look^2)``.

    A Bonferroni correction over an unbounded sequence of looks (the weights sum to 1), so
    the chance that ANY look of a good canary fails stays below ``alpha`` however long the
    rollout runs, without fixing the number of looks in advance.

    >>> round(look_alpha(0.05, 1), 5), round(look_alpha(0.05, 10), 7)
    (0.0304, 0.000304)
    """
    if look < 1:
        raise ValueError("looks count from 1")
    return alpha * 6.0 / (math.pi**2 * look**2)


def g_test(canary: Mapping[str, int], default: Mapping[str, int]) -> tuple[float, float]:
    """G test (log-likelihood ratio) of homogeneity of two class-count tables:
    (statistic, p-value). Classes neither arm answered are left out; one class: p = 1.

    >>> g, p = g_test({"a": 50, "b": 50}, {"a": 48, "b": 52})
    >>> p > 0.5
    True
    >>> g, p = g_test({"a": 100}, {"a": 50, "b": 50})
    >>> p < 1e-10
    True
    """
    classes = sorted({c for c in (*canary, *default) if canary.get(c, 0) + default.get(c, 0)})
    if len(classes) < 2 or not sum(canary.values()) or not sum(default.values()):
        return 0.0, 1.0
    table = np.array([[canary.get(c, 0) for c in classes], [default.get(c, 0) for c in classes]])
    g, p, _, _ = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    return float(g), float(p)


def ks_test(canary: Sequence[float], default: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test of predicted values: (D, p-value).

    >>> rng = np.random.default_rng(0)
    >>> round(ks_test(rng.normal(0, 1, 300), rng.normal(0, 1, 300))[1], 2) > 0.05
    True
    >>> ks_test(rng.normal(1, 1, 300), rng.normal(0, 1, 300))[1] < 1e-6
    True
    """
    if len(canary) < 2 or len(default) < 2:
        return 0.0, 1.0
    result = stats.ks_2samp(np.asarray(canary, float), np.asarray(default, float))
    return float(result.statistic), float(result.pvalue)


def answers_test(
    canary: Sequence[object], default: Sequence[object], classification: bool, level: float
) -> GateResult:
    """Do the canary's answers follow the default's distribution? (G test on classes for
    classifiers, KS on values for regressors, at ``level``.)

    >>> answers_test(["a"] * 80, ["a", "b"] * 40, True, 0.01).passed
    False
    """
    if classification:
        counts_c: dict[str, int] = {}
        counts_d: dict[str, int] = {}
        for value in canary:
            counts_c[str(value)] = counts_c.get(str(value), 0) + 1
        for value in default:
            counts_d[str(value)] = counts_d.get(str(value), 0) + 1
        statistic, p = g_test(counts_c, counts_d)
        detail = f"classes canary {counts_c} vs default {counts_d}"
    else:
        statistic, p = ks_test([float(v) for v in canary],  # type: ignore[arg-type]
                               [float(v) for v in default])  # type: ignore[arg-type]
        detail = f"KS over {len(canary)} canary and {len(default)} default values"
    return GateResult("answers", p >= level, statistic, p, level, detail)


def agreement_test(
    pairs: Sequence[tuple[object, object | None]], classification: bool,
    max_disagreement: float, level: float, tolerance: float = 0.0,
) -> GateResult:
    """Row-by-row agreement of a shadow with the default on the same inputs.

    ``pairs`` holds (default answer, shadow answer or None when the shadow failed on that
    row). A row disagrees when the shadow failed, or answered another class (classifiers),
    or a value further than ``tolerance`` from the default's (regressors). The gate fails
    when a one-sided binomial test says the disagreement rate is above
    ``max_disagreement`` (p < ``level``).

    >>> agreement_test([("a", "a")] * 95 + [("a", "b")] * 5, True, 0.1, 0.01).passed
    True
    >>> agreement_test([("a", "b")] * 40 + [("a", "a")] * 60, True, 0.1, 0.01).passed
    False
    >>> agreement_test([(1.0, 1.05)] * 50 + [(1.0, None)] * 50, False, 0.1, 0.01, 0.1).passed
    False
    """
    def disagrees(default: object, shadow: object | None) -> bool:
        if shadow is None:
            return True
        if classification:
            return str(default) != str(shadow)
        gap = abs(float(default) - float(shadow))  # type: ignore[arg-type]
        return not gap <= tolerance  # NaN disagrees

    n = len(pairs)
    bad = sum(disagrees(d, s) for d, s in pairs)
    failed = sum(s is None for _, s in pairs)
    p = (float(stats.binomtest(bad, n, max_disagreement, alternative="greater").pvalue)
         if n else 1.0)
    what = "class" if classification else f"value (tolerance {tolerance:.4g})"
    return GateResult("agreement", p >= level, bad / n if n else None, p, level,
                      f"{bad} of {n} rows disagree with the default on the {what}, "
                      f"{failed} shadow failures; limit {max_disagreement:g}")


def drift_gate(drifted: Sequence[str]) -> GateResult:
    """Fails while any of the canary version's own monitored streams is drift-active
    (its inputs or answers already look drifted against its own reference).

    >>> drift_gate([]).passed, drift_gate(["age", "__prediction__"]).detail
    (True, 'drift active on age, __prediction__')
    """
    if not drifted:
        return GateResult("drift", True, 0.0, None, None, "no drift active on the version")
    return GateResult("drift", False, float(len(drifted)), None, None,
                      "drift active on " + ", ".join(drifted))


def share_deficit(canary: int, total: int, weight: float) -> float:
    """One-sided binomial p-value that the canary arm's share of logged answers is below
    its routed ``weight`` (requests routed to it that failed are never logged).

    >>> round(share_deficit(25, 100, 0.25), 2)
    0.55
    >>> share_deficit(5, 100, 0.25) < 1e-5
    True
    """
    if total == 0 or weight <= 0.0 or weight >= 1.0:
        return 1.0
    return float(stats.binomtest(canary, total, weight, alternative="less").pvalue)


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (linear interpolation); NaN for no values.

    >>> p99(list(range(101)))
    99.0
    """
    return float(np.percentile(values, 99)) if len(values) else math.nan


def latency_gate(
    canary_ms: Sequence[float], default_ms: Sequence[float], ratio: float, slack_ms: float
) -> GateResult:
    """The canary's p99 latency is at most ``ratio`` times the default's plus ``slack_ms``.

    >>> latency_gate([5.0] * 100, [4.0] * 100, 1.5, 1.0).passed
    True
    >>> latency_gate([50.0] * 100, [4.0] * 100, 1.5, 1.0).passed
    False
    """
    c, d = p99(canary_ms), p99(default_ms)
    if math.isnan(c) or math.isnan(d):
        return GateResult("latency", True, None, None, None, "no latency yet")
    limit = d * ratio + slack_ms
    return GateResult("latency", c <= limit, c, None, limit,
                      f"p99 canary {c:.2f} ms vs default {d:.2f} ms (limit {limit:.2f} ms)")


class MixtureSPRT:
    """Always-valid p-value that the canary's mean loss exceeds the default's.

    A normal-mixture sequential probability ratio test (Robbins; Johari et al., "Always
    valid inference", 2017) on the difference of two means (losses: 1 - correct for
    classifiers, absolute error for regressors). With ``d`` the observed difference and
    ``s2`` its variance, the mixture likelihood ratio against a N(0, ``tau2``) prior on the
    effect is ``sqrt(s2 / (s2 + tau2)) * exp(tau2 d^2 / (2 s2 (s2 + tau2)))``; the p-value
    ``min over looks of 1 / ratio`` is valid at ANY stopping time, so the rollout can look
    after every label, stop early on a clearly worse canary, and never promote on noise:
    the type-I error stays below ``alpha`` however many looks. It does not need the number
    of labels in advance (a group-sequential design would).

    Parameters
    ----------
    tau2
        Variance of the mixing prior on the effect (the effect size it is tuned for,
        squared).

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> test = MixtureSPRT(tau2=0.01)
    >>> for _ in range(40):
    ...     test.update(list(rng.binomial(1, 0.1, 10)), list(rng.binomial(1, 0.1, 10)))
    >>> test.p_value > 0.05
    True
    >>> bad = MixtureSPRT(tau2=0.01)
    >>> for _ in range(40):
    ...     bad.update(list(rng.binomial(1, 0.5, 10)), list(rng.binomial(1, 0.1, 10)))
    >>> bad.p_value < 0.001
    True
    """

    def __init__(self, tau2: float = 0.01) -> None:
        self.tau2 = tau2
        self._reset()

    def _reset(self) -> None:
        self._n = [0, 0]
        self._sum = [0.0, 0.0]
        self._sq = [0.0, 0.0]
        self._p = 1.0

    def update(self, canary_losses: Sequence[float], default_losses: Sequence[float]) -> None:
        """Add losses of both arms, then take one look."""
        for arm, values in enumerate((canary_losses, default_losses)):
            for value in values:
                self._n[arm] += 1
                self._sum[arm] += float(value)
                self._sq[arm] += float(value) ** 2
        if min(self._n) < 2:
            return
        means = [self._sum[i] / self._n[i] for i in (0, 1)]
        var = [max(self._sq[i] / self._n[i] - means[i] ** 2, 1e-4) for i in (0, 1)]
        s2 = var[0] / self._n[0] + var[1] / self._n[1]
        d = means[0] - means[1]
        if d <= 0:  # the canary is no worse: no evidence against it at this look
            return
        log_ratio = 0.5 * math.log(s2 / (s2 + self.tau2)) + (
            self.tau2 * d * d / (2.0 * s2 * (s2 + self.tau2))
        )
        self._p = min(self._p, math.exp(-log_ratio) if log_ratio < 700 else 0.0)

    @property
    def p_value(self) -> float:
        """Always-valid p-value that the canary is worse (non-increasing over looks)."""
        return self._p

    @property
    def counts(self) -> tuple[int, int]:
        """(canary, default) losses seen."""
        return self._n[0], self._n[1]

    @property
    def mean_losses(self) -> tuple[float | None, float | None]:
        return tuple(  # type: ignore[return-value]
            self._sum[i] / self._n[i] if self._n[i] else None for i in (0, 1)
        )
