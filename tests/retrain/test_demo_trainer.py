"""``models.demo:retrain`` on every demo model: a fresh copy of the serving estimator, fitted on
the records since the evidence window (a context built from the model's reference sample)."""

from __future__ import annotations

import pytest

from models.demo import DEMO_MODELS, retrain
from models.registry import LABEL_COLUMN, get_model
from service.retrain.contract import CurrentVersion, TrainerContext
from service.retrain.holdout import holdout_loss


@pytest.mark.parametrize("name", sorted(DEMO_MODELS))
def test_demo_trainer_fits_every_demo_model(name: str, demo_models) -> None:
    entry = get_model(name)
    ref = entry.reference()
    records = ref[entry.card.feature_names].assign(label=ref[LABEL_COLUMN].to_numpy(),
                                                   ts=range(len(ref)))
    current = CurrentVersion(name, entry.version, entry.load_estimator(), entry.card)
    window = float(len(ref) // 2)
    context = TrainerContext(name, current, records, window, ref, {"model": name})
    model = retrain(context)
    assert model is not current.estimator
    recent = records[records["ts"] >= window]
    assert len(context.recent()) == len(recent)
    # fitted on the recent half: it fits that half about as well as the serving version
    loss_new = holdout_loss(model, entry.card, recent)
    loss_old = holdout_loss(current.estimator, entry.card, recent)
    assert loss_new <= loss_old * 1.05 + 1e-9
    assert len(model.predict(context.features(recent.head(3)))) == 3
