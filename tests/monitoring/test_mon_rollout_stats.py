"""The rollout gates' statistics on seeded streams: error rate under repeated looks,
detection of a worse canary."""

from __future__ import annotations

import numpy as np

from monitoring.rollout_stats import (
    MixtureSPRT,
    answers_test,
    g_test,
    latency_gate,
    look_alpha,
    share_deficit,
)


def test_look_levels_sum_below_alpha() -> None:
    assert sum(look_alpha(0.05, k) for k in range(1, 100_000)) < 0.05
    assert look_alpha(0.05, 2) < look_alpha(0.05, 1)


def test_repeated_answer_looks_on_identical_arms_rarely_fail() -> None:
    """200 rollouts of a canary identical to the default, 30 growing looks each: with the
    per-look correction the share of rollouts with any failed look stays below alpha."""
    rng = np.random.default_rng(1)
    failed = 0
    for _ in range(200):
        canary = rng.choice(["a", "b", "c"], size=600, p=[0.5, 0.3, 0.2])
        default = rng.choice(["a", "b", "c"], size=1800, p=[0.5, 0.3, 0.2])
        for look in range(1, 31):
            n = 20 * look
            if not answers_test(list(canary[:n]), list(default[: 3 * n]), True,
                                look_alpha(0.05, look)).passed:
                failed += 1
                break
    assert failed / 200 <= 0.05


def test_constant_class_canary_fails_at_the_first_look() -> None:
    rng = np.random.default_rng(2)
    default = list(rng.choice(["0", "1"], size=150, p=[0.4, 0.6]))
    result = answers_test(["1"] * 50, default, True, look_alpha(0.05, 1))
    assert not result.passed and result.p_value is not None and result.p_value < 1e-6


def test_regressor_answers_use_ks() -> None:
    rng = np.random.default_rng(3)
    same = answers_test(list(rng.normal(size=200)), list(rng.normal(size=600)), False, 0.01)
    shifted = answers_test(list(rng.normal(0.8, 1, 200)), list(rng.normal(size=600)), False,
                           0.01)
    assert same.passed and not shifted.passed


def test_g_test_ignores_unused_classes() -> None:
    assert g_test({"a": 10, "z": 0}, {"a": 12}) == (0.0, 1.0)


def test_share_deficit_sees_dropped_canary_requests() -> None:
    assert share_deficit(240, 1000, 0.25) > 0.1
    assert share_deficit(150, 1000, 0.25) < 1e-10


def test_latency_gate_margin() -> None:
    assert latency_gate([10.0] * 99 + [14.0], [10.0] * 100, 1.2, 2.0).passed
    assert not latency_gate([30.0] * 100, [10.0] * 100, 1.2, 2.0).passed
    assert latency_gate([], [1.0], 1.2, 2.0).passed


def test_msprt_error_rate_and_power() -> None:
    """Type-I error at any stopping time on 200 equal streams; a 10-point worse accuracy
    is found within a few hundred labels."""
    rng = np.random.default_rng(4)
    false = 0
    for _ in range(200):
        test = MixtureSPRT(0.01)
        for _ in range(50):
            test.update(list(rng.binomial(1, 0.2, 5)), list(rng.binomial(1, 0.2, 15)))
            if test.p_value < 0.05:
                false += 1
                break
    assert false / 200 <= 0.05
    worse = MixtureSPRT(0.01)
    looks = 0
    while worse.p_value >= 0.05 and looks < 200:
        worse.update(list(rng.binomial(1, 0.3, 5)), list(rng.binomial(1, 0.2, 15)))
        looks += 1
    assert worse.p_value < 0.05 and worse.counts[0] <= 600
