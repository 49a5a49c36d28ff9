"""The driftgate command line: register/list/show, log export and prune, webhooks, replay."""

from __future__ import annotations

import json
import pickle
import time

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.demo import breast_cancer_data
from models.registry import get_model
from service.cli import main
from service.config import get_settings
from service.store.factory import open_store
from service.store.records import PredictionRecord
from tests.service.gateway_helpers import configure


@pytest.fixture
def store(tmp_path, demo_models):
    configure(tmp_path)
    s = open_store(get_settings().resolved_store_url)
    yield s
    s.close()


def test_register_list_show_round_trip(tmp_path, capsys):
    X, y = breast_cancer_data()
    model = LogisticRegression(max_iter=2000).fit(X.to_numpy(), y)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    X.assign(diagnosis=y).to_csv(tmp_path / "train.csv", index=False)
    assert main(["models", "register", "--name", "cli-cancer", "--model",
                 str(tmp_path / "model.pkl"), "--data", str(tmp_path / "train.csv"),
                 "--target", "diagnosis", "--metrics", '{"accuracy": 0.9}',
                 "--trigger", '{"type": "drift", "event_id": "e1"}']) == 0
    registered = json.loads(capsys.readouterr().out)
    assert registered["card"]["lineage"]["trigger"] == {"type": "drift", "event_id": "e1"}
    assert registered["card"]["class_labels"] == ["benign", "malignant"]
    main(["models", "list"])
    assert "cli-cancer" in {m["name"] for m in json.loads(capsys.readouterr().out)}
    main(["models", "show", "cli-cancer"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["card"]["metrics"] == {"accuracy": 0.9}
    assert len(get_model("cli-cancer").reference()) == len(X)


def _log(store, n: int, model: str = "diabetes", ts0: float = 1_000.0) -> list[PredictionRecord]:
    entry = get_model(model)
    ref = entry.reference()
    records = [
        PredictionRecord(model=model, version=entry.version,
                         features=ref[entry.card.feature_names].iloc[i].to_dict(),
                         prediction=float(ref["__prediction__"].iloc[i]), ts=ts0 + i)
        for i in range(n)
    ]
    store.append(records)
    return records


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_log_export_with_labels_and_time_window(store, tmp_path, fmt, capsys):
    records = _log(store, 20)
    store.add_labels([(r.id, 100.0 + i) for i, r in enumerate(records[:5])])
    out = tmp_path / f"export.{fmt}"
    assert main(["log", "export", "--model", "diabetes", "--with-labels", "--format", fmt,
                 "-o", str(out)]) == 0
    frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert sorted(frame["id"]) == sorted(r.id for r in records[:5])
    assert "bmi" in frame.columns and frame["label"].notna().all()
    main(["log", "export", "--model", "diabetes", "--since", "1005", "--until", "1010",
          "--format", fmt, "-o", str(out)])
    frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert sorted(frame["id"]) == sorted(r.id for r in records[5:10])


def test_log_export_rejects_bad_time(store):
    with pytest.raises(ValueError):
        main(["log", "export", "--model", "diabetes", "--since", "yesterday-ish"])


def test_prune_keeps_what_the_monitor_has_not_consumed(store, capsys):
    old = _log(store, 10, ts0=time.time() - 40 * 86400)
    _log(store, 5, ts0=time.time())
    store.save_checkpoint("monitor", old[5].offset, 0, b"")
    assert main(["log", "prune", "--days", "30"]) == 0
    assert "pruned 6 records" in capsys.readouterr().out
    remaining = {r.id for r in store.read_after(0, 100)}
    assert {r.id for r in old[6:]} <= remaining


def test_webhooks_list_and_retry(store, capsys):
    store.outbox_enqueue("evt-1", "http://127.0.0.1:9/hook", {"model": "diabetes"}, "diabetes")
    item = store.outbox_claim_due(time.time() + 1, 10, 30)[0]
    store.outbox_mark_failed(item.id, "connection refused", None)
    main(["webhooks", "list", "--status", "dead"])
    listed = json.loads(capsys.readouterr().out)
    assert [(i["event_id"], i["status"]) for i in listed] == [("evt-1", "dead")]
    main(["webhooks", "retry"])
    assert "requeued 1" in capsys.readouterr().out
    assert [i.event_id for i in store.outbox_list("pending")] == ["evt-1"]


def test_monitor_replay_finds_drift_in_history(store, capsys):
    entry = get_model("diabetes")
    ref = entry.reference()
    sd = float(ref["bmi"].std())
    rows = ref[entry.card.feature_names].sample(600, replace=True, random_state=1)
    records = [
        PredictionRecord(model="diabetes", version=entry.version,
                         features={**row, "bmi": row["bmi"] + (2 * sd if i >= 400 else 0.0)},
                         prediction=float(ref["__prediction__"].iloc[i % len(ref)]),
                         ts=2_000.0 + i)
        for i, row in enumerate(rows.to_dict("records"))
    ]
    store.append(records)
    assert main(["monitor", "replay", "--model", "diabetes"]) == 0
    out = capsys.readouterr()
    events = [json.loads(line) for line in out.out.splitlines()]
    bmi = [e for e in events if e["kind"] == "feature_drift" and e["feature"] == "bmi"]
    assert bmi and [r.id for r in records].index(bmi[0]["record_id"]) >= 400
    assert "replayed 600 records" in out.err
    assert store.load_checkpoint("monitor") is None  # the live checkpoint is untouched
    assert store.read_events("diabetes") == []
