"""Retrain webhooks survive a receiver outage and a gateway crash: every request arrives,
exactly once per webhook-id, with a valid signature."""

from __future__ import annotations

import signal

from tests.e2e.conftest import FAST_MONITOR, start_gateway_retrying, stop_gateway, write_serving
from tests.e2e.traffic import reference_rows, send, shifted, wait_for
from tests.webhooks.webhook_helpers import SECRET, Receiver

DRIFTS = {"diabetes": "bmi", "breast-cancer": "mean_texture"}
RETRY_FAST = {**FAST_MONITOR, "DRIFTGATE_WEBHOOK_BACKOFF_SECONDS": "0.2",
              "DRIFTGATE_WEBHOOK_MAX_BACKOFF_SECONDS": "1", "DRIFTGATE_WEBHOOK_MAX_ATTEMPTS": "100"}


def test_outage_and_crash_lose_nothing_and_duplicate_nothing(demo_models, tmp_path):
    receiver = Receiver(SECRET).start()
    receiver.default = 503  # the retraining service is down
    write_serving(tmp_path, receiver)
    server = start_gateway_retrying(tmp_path, RETRY_FAST)
    try:
        for model, feature in DRIFTS.items():
            send(server.url, model, reference_rows(model, 300, seed=1), per_request=30)
            send(server.url, model, shifted(reference_rows(model, 200, seed=2), model, feature,
                                            2.0), per_request=5)

        def failing_for_both_models():
            failed = {a["payload"]["model"] for a in receiver.attempts if a["status"] == 503}
            return failed >= set(DRIFTS) and len(receiver.attempts) >= 4

        wait_for(failing_for_both_models, timeout=60)
        stop_gateway(server, signal.SIGKILL)  # crash while deliveries are pending
        server = start_gateway_retrying(tmp_path, RETRY_FAST)
        receiver.default = 200  # the retraining service is back

        def delivered_both():
            return {d["payload"]["model"] for d in receiver.delivered} >= set(DRIFTS)

        wait_for(delivered_both, timeout=60)
        send(server.url, "diabetes", reference_rows("diabetes", 40, seed=3), per_request=10)
    finally:
        stop_gateway(server)
        receiver.stop()
    assert receiver.bad_signatures == 0
    assert all(count == 1 for count in receiver.ids().values()), receiver.ids()
    ids_per_model: dict[str, set[str]] = {}
    for attempt in receiver.attempts:
        ids_per_model.setdefault(attempt["payload"]["model"], set()).add(attempt["id"])
    # one drift episode per model: one webhook-id, retried under the same id
    assert {m: len(ids) for m, ids in ids_per_model.items()} == dict.fromkeys(DRIFTS, 1)
