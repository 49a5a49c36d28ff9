"""The ``driftgate`` command line: models, the prediction log, the monitor and webhooks.

    driftgate models register --name churn --model model.pkl --data train.parquet --target churned
    driftgate models list
    driftgate models show churn [--version V]
    driftgate models demo [--if-empty]
    driftgate models attributions churn [--versions V1,V2] [--json]
    driftgate models promote churn V [--reason WHY]
    driftgate models alias churn stable V
    driftgate models canary churn V --weight 0.1     (or: churn --off)
    driftgate models shadow churn V                   (or: churn --off)
    driftgate models rollback churn
    driftgate routing apply driftgate.yaml [--prune]
    driftgate routing history churn
    driftgate routing show churn
    driftgate rollout start churn --version V [--steps 5,25,50,100] [--step-seconds 600]
                                   [--min-requests 500] [--shadow-first]
    driftgate rollout status churn [--id R] [--json]
    driftgate rollout abort churn [--reason WHY]
    driftgate log export --model churn --since 2026-11-01 --with-labels -o out.parquet
    driftgate log prune
    driftgate monitor replay --model churn [--since T]
    driftgate monitor run [--port 3001]
    driftgate webhooks list [--status dead]
    driftgate webhooks retry [--id N ...]
    driftgate keys create --scope predict [--models diabetes] [--expires 90d] [--name ci]
    driftgate keys list | keys revoke KEY_ID
    driftgate audit [--since T] [--action key.create]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from service.times import parse_time


def _read_table(path: str) -> pd.DataFrame:
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_models_register(args: argparse.Namespace) -> int:
    from models.registry import register_model

    with open(args.model, "rb") as fh:
        estimator = pickle.load(fh)
    data = _read_table(args.data)
    if args.target not in data.columns:
        raise SystemExit(f"target column {args.target!r} is not in {args.data}")
    overrides: dict[str, dict[str, Any]] = {}
    for item in args.kind or []:
        name, _, kind = item.partition("=")
        overrides.setdefault(name, {})["kind"] = kind
    for item in args.pii or []:
        name, _, mode = item.partition("=")
        if mode not in ("hash", "drop"):
            raise SystemExit(f"--pii takes FEATURE=hash or FEATURE=drop, not {item!r}")
        overrides.setdefault(name, {})["pii"] = mode
    reference = _read_table(args.reference) if args.reference else None
    entry = register_model(
        args.name,
        estimator,
        data.drop(columns=[args.target]),
        data[args.target],
        task=args.task,
        overrides=overrides,
        metrics=json.loads(args.metrics) if args.metrics else None,
        code_version=args.code_version,
        parent_version=args.parent_version,
        trigger=json.loads(args.trigger) if args.trigger else None,
        reference=reference.drop(columns=[args.target]) if reference is not None else None,
        reference_target=reference[args.target] if reference is not None else None,
    )
    _store().audit_append(_actor(), "model.register", args.name,
                          {"version": entry.version, "code_version": args.code_version})
    _print({"registered": entry.tag, "card": entry.card.model_dump()})
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from models.registry import list_models

    _print([{**m.summary(), "task": m.card.task} for m in list_models()])
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from models.registry import get_model

    if args.lineage:
        from service.retrain.cli import show_lineage

        return show_lineage(args.name, args.version, args.json)
    entry = get_model(args.name, args.version)
    _print({**entry.summary(), "path": str(entry.path), "card": entry.card.model_dump()})
    return 0


def cmd_models_attributions(args: argparse.Namespace) -> int:
    """Global feature attribution per version (baseline and live), side by side."""
    from models.registry import list_models
    from service.explain_api import _live, attribution_view

    entries = list_models(args.name)
    if args.versions:
        wanted = [v.strip() for v in args.versions.split(",") if v.strip()]
        unknown = sorted(set(wanted) - {e.version for e in entries})
        if unknown:
            print(f"unknown versions of {args.name}: {', '.join(unknown)}", file=sys.stderr)
            return 1
        entries = [e for v in wanted for e in entries if e.version == v]
    if not entries:
        print(f"unknown model {args.name!r}", file=sys.stderr)
        return 1
    try:
        live = _live(_store(), args.name)
    except Exception as exc:  # the baselines are on the cards; live needs the store
        print(f"no live attribution (store: {exc!r})", file=sys.stderr)
        live = {}
    view = attribution_view(args.name, entries, live)
    if args.json:
        _print(view)
        return 0
    print(_attribution_table(view))
    return 0


def _attribution_table(view: dict[str, Any]) -> str:
    """feature | per version: baseline share (rank) and live share (rank, change)."""
    versions = view["versions"]
    header = ["feature"]
    for v in versions:
        header += [f"{v['version']} baseline", f"{v['version']} live"]
    lines = [header]
    for row in view["features"]:
        cells = [row["feature"]]
        for v in versions:
            base = v["baseline"].get(row["feature"])
            live = (v["live"] or {}).get(row["feature"])
            cells.append(f"{base['share']:.1%} (#{base['rank']})" if base else "-")
            if live and base:
                change = base["rank"] - live["rank"]
                cells.append(f"{live['share']:.1%} (#{live['rank']}, {change:+d})")
            else:
                cells.append(f"{live['share']:.1%} (#{live['rank']})" if live else "-")
        lines.append(cells)
    footer = []
    for v in versions:
        method = v["explainer"].get("method")
        ndcg = "-" if v["ndcg"] is None else f"{v['ndcg']:.3f} (threshold {v['threshold']:.3f})"
        footer.append(f"{v['version']}: explainer {method}, sampled {v['sampled']}, "
                      f"nDCG vs baseline {ndcg}" + (", DRIFT" if v["drift_active"] else ""))
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header))]
    table = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    return "\n".join(table + footer)


def cmd_models_demo(args: argparse.Namespace) -> int:
    from models.demo import register_demo_models
    from models.registry import list_models

    if args.if_empty and list_models():
        print("models already registered; not adding the demo models")
        return 0
    for entry in register_demo_models():
        print(f"registered {entry.tag} ({entry.card.task})")
    return 0


def _store():
    from service.config import get_settings
    from service.store.factory import open_store

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(settings.resolved_store_url)


def _actor() -> str:
    import getpass
    import socket

    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def _admin():
    from service.routing_state import RoutingAdmin

    return RoutingAdmin(_store(), _actor())


def _report(change: Any) -> int:
    from service.routing_state import describe_change

    print(describe_change(change) if change is not None else "no change: already so")
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    return _report(_admin().promote(args.name, args.version, args.reason))


def cmd_models_alias(args: argparse.Namespace) -> int:
    version = None if args.remove else args.version
    if version is None and not args.remove:
        raise SystemExit("give a VERSION or --remove")
    return _report(_admin().alias(args.name, args.alias, version, args.reason))


def cmd_models_canary(args: argparse.Namespace) -> int:
    if args.off == (args.version is not None):
        raise SystemExit("give VERSION --weight W, or --off")
    if not args.off and args.weight is None:
        raise SystemExit("give --weight W (the share of requests, 0 to 1)")
    weight = 0.0 if args.off else args.weight
    return _report(_admin().canary(args.name, args.version, weight, args.reason))


def cmd_models_shadow(args: argparse.Namespace) -> int:
    if args.off == (args.version is not None):
        raise SystemExit("give VERSION, or --off")
    return _report(_admin().shadow(args.name, args.version, args.reason))


def cmd_models_rollback(args: argparse.Namespace) -> int:
    return _report(_admin().rollback(args.name, args.reason))


def cmd_routing_apply(args: argparse.Namespace) -> int:
    from pathlib import Path

    from service.config import ServingConfig
    from service.routing_state import describe_change

    path = Path(args.file)
    if not path.exists():
        raise SystemExit(f"{path} does not exist")
    changes = _admin().apply(ServingConfig.load(path), prune=args.prune,
                             reason=args.reason or f"apply {path}")
    for change in changes:
        print(describe_change(change))
    print(f"{len(changes)} change(s)" if changes else "no changes: the store matches the file")
    return 0


def cmd_routing_history(args: argparse.Namespace) -> int:
    from service.routing_state import describe_change

    admin = _admin()
    admin.versions(args.name)
    changes = admin.history(args.name, args.limit)
    if args.json:
        _print([c.as_json() for c in changes])
        return 0
    for change in changes:
        when = datetime.fromtimestamp(change.ts, UTC).isoformat(timespec="seconds")
        print(f"{when} {describe_change(change)}")
    if not changes:
        print(f"no routing changes of {args.name} (it serves its latest version)")
    return 0


def cmd_routing_show(args: argparse.Namespace) -> int:
    from service.routing_state import document_of

    admin = _admin()
    admin.versions(args.name)
    spec, revision = admin.current(args.name)
    _print({"name": args.name, "revision": revision, "routing": document_of(spec)})
    return 0


def _rollouts():
    from service.rollout import Rollouts

    return Rollouts(_store())


def _steps(text: str) -> list[float]:
    try:
        return [float(w) / 100.0 for w in text.split(",") if w.strip()]
    except ValueError:
        raise SystemExit(f"--steps takes percentages like 5,25,50,100, not {text!r}") from None


def _describe_rollout(row: Any) -> str:
    doc = row.doc
    weights = ",".join(f"{w * 100:g}" for w in doc["steps"])
    gates = "; ".join(f"{g['gate']} {'pass' if g['passed'] else 'FAIL'} ({g['detail']})"
                      for g in doc.get("gates") or []) or "no gate evaluated yet"
    return (f"{row.id} {row.model}: {doc['baseline']} -> {doc['version']} {row.status}"
            + (f", shadow step (then {weights} %)" if doc.get("phase") == "shadow" else
               f", step {doc['step'] + 1}/{len(doc['steps'])} of {weights} %")
            + f"\n  gates: {gates}"
            + (f"\n  decision: {doc['decision']}" if doc.get("decision") else ""))


def cmd_rollout_start(args: argparse.Namespace) -> int:
    from service.rollout import RolloutPlan

    plan = RolloutPlan(args.version, _steps(args.steps), args.step_seconds, args.min_requests,
                       reason=args.reason, shadow_first=args.shadow_first,
                       max_disagreement=args.max_disagreement)
    admin = _admin()
    row = _rollouts().start(args.name, plan, admin.actor)
    print(_describe_rollout(row))
    return 0


def _pick(args: argparse.Namespace) -> Any:
    from service.errors import APIError

    rollouts = _rollouts()
    if args.id:
        return rollouts.get(args.name, args.id)
    rows = rollouts.store.rollout_list(args.name, limit=1)
    if not rows:
        raise APIError(404, "unknown_rollout", f"model {args.name!r} has no rollout")
    return rows[-1]


def cmd_rollout_status(args: argparse.Namespace) -> int:
    row = _pick(args)
    if args.json:
        _print({"id": row.id, "status": row.status, **row.doc})
    else:
        print(_describe_rollout(row))
    return 0


def cmd_rollout_abort(args: argparse.Namespace) -> int:
    row = _pick(args)
    print(_describe_rollout(_rollouts().abort(args.name, row.id, _admin().actor, args.reason)))
    return 0


def cmd_log_export(args: argparse.Namespace) -> int:
    from service.store.export import export_to_file

    store = _store()
    frame = store.export(
        args.model, since=parse_time(args.since), until=parse_time(args.until),
        with_labels=args.with_labels, version=args.version,
    )
    output = args.output or f"{args.model}.{args.format}"
    export_to_file(frame, output, args.format)
    store.audit_append(_actor(), "log.export", args.model,
                       {"rows": len(frame), "since": args.since, "until": args.until,
                        "version": args.version, "output": str(output)})
    print(f"wrote {len(frame)} rows to {output}")
    return 0


def cmd_log_prune(args: argparse.Namespace) -> int:
    from service.config import get_settings

    days = args.days if args.days is not None else get_settings().retention_days
    if days is None:
        raise SystemExit("give --days or set DRIFTGATE_RETENTION_DAYS")
    store = _store()
    pruned = store.prune(days * 86400.0, store.min_checkpoint_offset() or 0,
                         store.min_checkpoint_label_offset() or 0)
    print(f"pruned {pruned} records")
    return 0


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    from service.webhooks.dispatcher import list_deliveries

    items = list_deliveries(_store(), args.status)
    _print([
        {"id": i.id, "event_id": i.event_id, "endpoint": i.endpoint, "model": i.model,
         "status": i.status, "attempts": i.attempts, "last_error": i.last_error,
         "next_attempt_at": i.next_attempt_at, "delivered_at": i.delivered_at}
        for i in items
    ])
    return 0


def cmd_webhooks_retry(args: argparse.Namespace) -> int:
    from service.webhooks.dispatcher import retry_dead

    store = _store()
    count = retry_dead(store, args.id or None)
    store.audit_append(_actor(), "webhooks.retry", None, {"ids": args.id, "requeued": count})
    print(f"requeued {count} dead-lettered deliveries")
    return 0


def cmd_monitor_replay(args: argparse.Namespace) -> int:
    """Rerun detection over the logged history of one model with fresh monitors.

    Prints the events as JSON lines; the live monitor's checkpoint is not touched.
    """
    from service.config import get_settings, monitor_config
    from service.monitor_runner import MonitorRunner

    store = _store()
    since = parse_time(args.since)
    config = monitor_config(get_settings())
    runner = MonitorRunner(store, config, consumer=f"replay-{args.model}", fresh=True,
                           models={args.model}, since=since)
    total_records = total_events = 0
    while (result := runner.step()).records:
        total_records += result.records
        for event in result.events:
            total_events += 1
            print(json.dumps(event.to_row(), default=str))
    print(f"replayed {total_records} records of {args.model}: {total_events} events",
          file=sys.stderr)
    return 0


def cmd_monitor_run(args: argparse.Namespace) -> int:
    from service.monitor_app import serve

    return serve(args.host, args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftgate", description=__doc__.split("\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)

    models = groups.add_parser("models", help="the model registry").add_subparsers(
        dest="command", required=True
    )
    reg = models.add_parser("register", help="register a pickled model with its card")
    reg.add_argument("--name", required=True)
    reg.add_argument("--model", required=True, help="pickle file of the fitted model")
    reg.add_argument("--data", required=True, help="training data, CSV or Parquet")
    reg.add_argument("--target", required=True, help="target column in --data")
    reg.add_argument("--reference", help="held-out data for the reference sample")
    reg.add_argument("--task", choices=["classification", "regression"])
    reg.add_argument("--kind", action="append", help="override a feature kind: NAME=categorical")
    reg.add_argument("--pii", action="append",
                     help="personal data: NAME=hash (stored as a keyed hash; categorical and "
                     "boolean) or NAME=drop (used to predict, never stored)")
    reg.add_argument("--metrics", help='JSON, e.g. {"accuracy": 0.93}')
    reg.add_argument("--code-version", default="unknown")
    reg.add_argument("--parent-version")
    reg.add_argument("--trigger", help='JSON, e.g. {"type": "drift", "event_id": "..."}')
    reg.set_defaults(func=cmd_models_register)
    models.add_parser("list", help="list registered models").set_defaults(func=cmd_models_list)
    show = models.add_parser("show", help="show one model version and its card")
    show.add_argument("name")
    show.add_argument("--version")
    show.add_argument("--lineage", action="store_true",
                      help="the chain of versions back to the first: alarm, data, rollout")
    show.add_argument("--json", action="store_true", help="with --lineage: as JSON")
    show.set_defaults(func=cmd_models_show)
    demo = models.add_parser("demo", help="train and register the demo models")
    demo.add_argument("--if-empty", action="store_true", help="only if no model is registered")
    demo.set_defaults(func=cmd_models_demo)
    attributions = models.add_parser(
        "attributions", help="global feature attribution per version, baseline and live")
    attributions.add_argument("name")
    attributions.add_argument("--versions", help="comma-separated versions (default: all)")
    attributions.add_argument("--json", action="store_true")
    attributions.set_defaults(func=cmd_models_attributions)
    _routing_commands(models, groups)

    _rollout_commands(groups)
    from service.keys_cli import add_commands

    add_commands(groups, _store, _actor)

    from service.retrain.cli import add_commands as retrain_commands

    retrain_commands(groups)
    log = groups.add_parser("log", help="the prediction log").add_subparsers(
        dest="command", required=True
    )
    export = log.add_parser("export", help="export logged predictions for retraining")
    export.add_argument("--model", required=True)
    export.add_argument("--version")
    export.add_argument("--since", help="ISO time or unix seconds (inclusive)")
    export.add_argument("--until", help="ISO time or unix seconds (exclusive)")
    export.add_argument("--with-labels", action="store_true", help="only labelled rows")
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    export.add_argument("-o", "--output")
    export.set_defaults(func=cmd_log_export)
    prune = log.add_parser("prune", help="delete old records the monitor has consumed")
    prune.add_argument("--days", type=float)
    prune.set_defaults(func=cmd_log_prune)

    hooks = groups.add_parser("webhooks", help="retrain webhook deliveries").add_subparsers(
        dest="command", required=True
    )
    listing = hooks.add_parser("list", help="deliveries in the outbox")
    listing.add_argument("--status", choices=["pending", "delivered", "dead"])
    listing.set_defaults(func=cmd_webhooks_list)
    retry = hooks.add_parser("retry", help="requeue dead-lettered deliveries")
    retry.add_argument("--id", type=int, action="append", help="an outbox id (default: all)")
    retry.set_defaults(func=cmd_webhooks_retry)

    monitor = groups.add_parser("monitor", help="the drift monitor").add_subparsers(
        dest="command", required=True
    )
    replay = monitor.add_parser("replay", help="rerun detection over logged history")
    replay.add_argument("--model", required=True)
    replay.add_argument("--since", help="ISO time or unix seconds")
    replay.set_defaults(func=cmd_monitor_replay)
    run = monitor.add_parser("run", help="run the monitor on its own (active or standby), "
                             "with /livez, /readyz, /metrics and /status")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=int, default=3001)
    run.set_defaults(func=cmd_monitor_run)
    return parser


def _rollout_commands(groups: Any) -> None:
    """``rollout start|status|abort``."""
    rollout = groups.add_parser("rollout", help="automated canary rollouts").add_subparsers(
        dest="command", required=True)
    start = rollout.add_parser("start", help="roll a version out in canary steps")
    start.add_argument("name")
    start.add_argument("--version", required=True)
    start.add_argument("--steps", default="5,25,50,100",
                       help="canary weights in percent; 100 (or the end) promotes")
    start.add_argument("--step-seconds", type=float, default=600.0)
    start.add_argument("--min-requests", type=int, default=500)
    start.add_argument("--shadow-first", action="store_true",
                       help="begin with a shadow step gated on row-by-row agreement")
    start.add_argument("--max-disagreement", type=float, default=0.1,
                       help="shadow step: largest share of rows that may disagree")
    start.add_argument("--reason", help="why (kept in the routing history)")
    start.set_defaults(func=cmd_rollout_start)
    status = rollout.add_parser("status", help="the latest rollout of a model (or --id)")
    status.add_argument("name")
    status.add_argument("--id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_rollout_status)
    abort = rollout.add_parser("abort", help="stop the running rollout; its canary ends")
    abort.add_argument("name")
    abort.add_argument("--id")
    abort.add_argument("--reason")
    abort.set_defaults(func=cmd_rollout_abort)


def _routing_commands(models: Any, groups: Any) -> None:
    """``models promote|alias|canary|shadow|rollback`` and ``routing apply|history|show``."""

    def change(command: str, help: str, func: Any, *positional: str) -> Any:
        parser = models.add_parser(command, help=help)
        parser.add_argument("name")
        for arg in positional:
            parser.add_argument(arg.rstrip("?"), nargs="?" if arg.endswith("?") else None)
        parser.add_argument("--reason", help="why (kept in the routing history)")
        parser.set_defaults(func=func)
        return parser

    change("promote", "make a version (or alias, or 'latest') the default, live",
           cmd_models_promote, "version")
    change("alias", "point an alias at a version", cmd_models_alias, "alias", "version?"
           ).add_argument("--remove", action="store_true", help="remove the alias")
    canary = change("canary", "send a share of the requests to a version", cmd_models_canary,
                    "version?")
    canary.add_argument("--weight", type=float, help="share of unpinned requests, 0 to 1")
    canary.add_argument("--off", action="store_true", help="end the canary")
    change("shadow", "copy requests to a version (answers logged)", cmd_models_shadow,
           "version?").add_argument("--off", action="store_true", help="end the shadow")
    change("rollback", "back to the previous default, in one step", cmd_models_rollback)

    routing = groups.add_parser("routing", help="live routing in the store").add_subparsers(
        dest="command", required=True
    )
    apply = routing.add_parser("apply", help="make the store's routing what a file says")
    apply.add_argument("file", help="the serving file, e.g. driftgate.yaml")
    apply.add_argument("--prune", action="store_true",
                       help="also remove the routing of models the file does not list")
    apply.add_argument("--reason", help="why (kept in the routing history)")
    apply.set_defaults(func=cmd_routing_apply)
    history = routing.add_parser("history", help="every routing change of a model")
    history.add_argument("name")
    history.add_argument("--limit", type=int, default=100)
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=cmd_routing_history)
    show = routing.add_parser("show", help="the stored routing of a model")
    show.add_argument("name")
    show.set_defaults(func=cmd_routing_show)

    bento = groups.add_parser("bento", help="package for deployment").add_subparsers(
        dest="command", required=True
    )
    bento.add_parser("build", help="bentoml build with every served model").set_defaults(
        func=cmd_bento_build
    )

    obs = groups.add_parser("observability", help="Prometheus and Alertmanager").add_subparsers(
        dest="command", required=True
    )
    config = obs.add_parser("config", help="write their configuration with these ports and "
                            "print the commands that start them")
    config.add_argument("--gateway", default="localhost:3000", help="host:port of the gateway")
    config.add_argument("--prometheus-port", type=int, default=9090)
    config.add_argument("--alertmanager-port", type=int, default=9093)
    config.add_argument("--retrain-worker", default="localhost:3100",
                        help="HOST:PORT of driftgate retrain worker (scraped for its metrics)")
    config.add_argument("--dir", default=".data/observability")
    config.add_argument("--alerts-key-file",
                        help="file holding the gateway's alerts-scope key, which Alertmanager "
                        "sends as its bearer credential (default: DIR/driftgate-alerts.key)")
    config.set_defaults(func=cmd_observability_config)


def cmd_bento_build(args: argparse.Namespace) -> int:
    from service.bento import build, served_model_tags
    from service.config import get_settings

    serving = get_settings().serving()
    print("packing " + ", ".join(served_model_tags(serving)))
    print(f"built {build(serving)}")
    return 0


def cmd_observability_config(args: argparse.Namespace) -> int:
    import shlex
    from pathlib import Path

    from service.observability_config import Ports, write

    ports = Ports(args.gateway, args.prometheus_port, args.alertmanager_port,
                  retrain_worker=args.retrain_worker)
    key_file = Path(args.alerts_key_file or Path(args.dir) / "driftgate-alerts.key")
    for command in write(ports, Path(args.dir), key_file):
        print(shlex.join(command))
    if not key_file.exists():
        print(f"# Alertmanager sends the key in {key_file} to the gateway; create it with",
              f"#   driftgate keys create --scope alerts --name alertmanager > {key_file}",
              f"#   chmod 600 {key_file}", sep="\n", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    from service.errors import APIError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except APIError as error:  # a mistake of the caller: the message, no traceback
        print(f"error: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
