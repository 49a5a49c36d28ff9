"""``driftgate retrain worker`` and ``driftgate models show NAME --lineage``."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_commands", "show_lineage"]


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import os
    import sys

    from service.retrain.settings import RetrainSettings
    from service.retrain.worker import RetrainWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides: dict[str, Any] = {}
    if args.secret:
        overrides["secret"] = args.secret
    if args.steps:
        overrides["steps"] = [float(s) for s in args.steps.split(",") if s.strip()]
    for name in ("margin", "min_labels", "step_seconds", "min_requests", "alpha"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    settings = RetrainSettings(**overrides)
    if os.getcwd() not in sys.path:  # the trainer's module may live in the working directory
        sys.path.insert(0, os.getcwd())
    worker = RetrainWorker(args.trainer, settings=settings)
    try:
        worker.serve(args.host, args.port)
    finally:
        worker.close()
    return 0


def show_lineage(name: str, version: str | None, as_json: bool) -> int:
    from service.cli import _store
    from service.retrain.lineage import chain, format_chain

    store = _store()
    try:
        links = chain(store, name, version)
    finally:
        store.close()
    print(json.dumps(links, indent=2, default=str) if as_json else format_chain(name, links))
    return 0


def add_commands(groups: Any) -> None:
    """``retrain worker``."""
    retrain = groups.add_parser("retrain", help="the retraining loop").add_subparsers(
        dest="command", required=True)
    worker = retrain.add_parser("worker", help="receive retrain webhooks and run a trainer")
    worker.add_argument("--trainer", required=True, help="MODULE:FUNCTION, e.g. "
                        "models.demo:retrain")
    worker.add_argument("--port", type=int, default=3100)
    worker.add_argument("--host", default="127.0.0.1")
    worker.add_argument("--secret", help="Standard Webhooks secret (default: "
                        "DRIFTGATE_RETRAIN_SECRET)")
    worker.add_argument("--margin", type=float, help="tolerated relative holdout loss increase")
    worker.add_argument("--min-labels", type=int, help="labelled records to wait for")
    worker.add_argument("--steps", help="rollout steps in percent, e.g. 5,25,50,100")
    worker.add_argument("--step-seconds", type=float)
    worker.add_argument("--min-requests", type=int)
    worker.add_argument("--alpha", type=float)
    worker.set_defaults(func=cmd_worker)
