"""Label values the gateway stores (normalised by /feedback) round-trip on both backends."""

from __future__ import annotations

import pytest

from models.card import ModelCard
from service.feedback import normalise_label
from service.store import Store
from tests.store.store_helpers import make_records


def test_huge_regression_label_is_stored_as_float_and_can_be_relabelled(store: Store) -> None:
    card = ModelCard.model_construct(task="regression", class_labels=None)
    (record,) = make_records(1)
    store.append([record])
    label = normalise_label(2**70, card)
    assert label == float(2**70) and type(label) is float
    assert store.add_labels([(record.id, label)], ts=1.0).accepted == [record.id]
    result = store.add_labels([(record.id, normalise_label(3, card))], ts=2.0)
    assert result.relabeled == [record.id]
    assert store.get([record.id])[0].label == 3.0
    # PostgreSQL's jsonb keeps 17 significant digits of 2**70 (and gives it back as an int)
    labels = [e.record.label for e in store.read_labels_after(0, 10)]
    assert labels == [pytest.approx(float(2**70), rel=1e-15), 3.0]


@pytest.mark.parametrize("label", [10**400, float("nan"), True, "3", None])
def test_regression_labels_must_be_finite_numbers(label) -> None:
    card = ModelCard.model_construct(task="regression", class_labels=None)
    with pytest.raises(ValueError, match="finite number"):
        normalise_label(label, card)


def test_classification_label_is_the_cards_class_and_bool_is_not_an_int() -> None:
    card = ModelCard.model_construct(task="classification", class_labels=[0, 1])
    assert normalise_label(1, card) == 1 and normalise_label(1.0, card) == 1
    with pytest.raises(ValueError, match="one of"):
        normalise_label(True, card)
    with pytest.raises(ValueError, match="one of"):
        normalise_label(2**70, card)
