"""A small resampled reference: registration reports what it really holds, warns, and the
drift tolerances and thresholds widen instead of crying wolf."""

from __future__ import annotations

import warnings

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from models.registry import ReferenceTooSmall, register_model
from monitoring.reference import MIN_EFFECTIVE_SIZE
from service.calibration_view import calibration


def test_resampled_reference_is_counted_by_its_distinct_rows(client, demo_models) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]  # eight features keep the calibration quick
    model = LogisticRegression(max_iter=2000).fit(X, y)
    few = X.sample(n=150, random_state=1)
    resampled = few.sample(n=2000, replace=True, random_state=2)  # 2,000 rows, ~150 distinct
    target = y.loc[resampled.index].reset_index(drop=True)
    resampled = resampled.reset_index(drop=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = register_model("few-distinct", model, X, y, reference=resampled,
                               reference_target=target)
    assert [w.category for w in caught] == [ReferenceTooSmall]
    size = small.card.reference_size
    assert size is not None and size["rows"] == 2000
    assert size["effective_size"] == size["distinct_rows"] == len(
        resampled.drop_duplicates()) < MIN_EFFECTIVE_SIZE
    assert size["duplicate_share"] > 0.9
    assert f"{size['effective_size']} distinct rows of 2000" in small.card.warnings[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 569 distinct rows register silently
        full = register_model("few-distinct", model, X, y, reference=X,
                              reference_target=y, drift_tolerance={
                                  "features": {"mean radius": {"mean_shift": 0.5}}})
    eff_small = small.card.drift_tolerance["effective"]
    eff_full = full.card.drift_tolerance["effective"]
    assert eff_full["mean radius"]["mean_shift"] == 0.5  # the user's per-feature setting
    others = [f for f in X.columns if f != "mean radius"]
    assert all(eff_small[f]["mean_shift"] > eff_full[f]["mean_shift"] for f in others)
    assert small.card.detectable_shift_sd > full.card.detectable_shift_sd

    wide, narrow = (calibration("few-distinct", m.version) for m in (small, full))
    assert wide["reference"]["effective_size"] == size["effective_size"]
    assert narrow["reference"]["effective_size"] == len(X)
    for f in others:  # the monitor calibrates on the distinct rows: wider tolerances
        tol = wide["streams"][f]["tolerance"]
        assert tol["mean_shift"] == eff_small[f]["mean_shift"]
        assert tol["reference_margin"] > narrow["streams"][f]["tolerance"]["reference_margin"]
        assert wide["streams"][f]["detectable_shift_sd"] > narrow["streams"][f][
            "detectable_shift_sd"]

    detail = client.get("/models/few-distinct").json()
    cards = {v["version"]: v["card"] for v in detail["versions"]}
    assert cards[small.version]["reference_size"] == size
    assert cards[full.version]["drift_tolerance"]["features"] == {
        "mean radius": {"mean_shift": 0.5}}
    assert pd.notna(cards[small.version]["detectable_shift_sd"])
