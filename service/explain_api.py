"""Explanation routes (mounted by :mod:`service.api`).

``POST /explain`` explains rows (the body of ``/predict``) without logging a prediction;
``GET /predictions/{id}/explanation`` explains a logged prediction from its logged features
with the version that served it; ``GET /models/{name}/attributions`` shows the global
attribution of versions side by side (the reference baseline from the card, live from the
monitor). A model no explainer fits answers 422 ``unexplainable`` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from models.explain import Unexplainable
from models.registry import RegisteredModel, list_models
from service.api_context import Context, GatewayContext, require_store
from service.attribution_stream import KV_ATTRIBUTION
from service.errors import APIError, not_found
from service.explaining import Explainers, VersionExplainer, explain_frame
from service.http import GuardedRoute, read_json
from service.openapi_docs import errors, json_body
from service.store.base import Store

router = APIRouter(tags=["explanations"], route_class=GuardedRoute)
EXPLAINERS = Explainers()  # per worker process
MAX_EXPLAIN_ROWS = 100
MAX_AGNOSTIC_ROWS = 10  # the permutation explainer costs hundreds of model rows per row


class ExplainRequest(BaseModel):
    model: str = Field(description="Registered model name.", examples=["breast-cancer"])
    version: str | None = Field(None, description="Version or alias; default routing if unset.")
    inputs: list[dict[str, Any]] = Field(description="One object per row, feature -> value.")


def _explain(explainer: VersionExplainer, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = explain_frame(rows, explainer.entry.card.feature_names)
    try:
        batch = explainer.explain(frame)
    except Unexplainable as exc:
        raise _unexplainable(explainer, str(exc)) from None
    except Exception as exc:  # shap failed on this model or row: a property of the model
        raise _unexplainable(explainer, f"explaining failed: {exc!r}") from None
    if not (np.isfinite(batch.values).all() and np.isfinite(batch.output).all()):
        raise _unexplainable(explainer, "the attributions of these rows are not finite "
                             "(values far outside the model's range)")
    return [batch.row(i).to_dict() for i in range(len(rows))]


def _unexplainable(explainer: VersionExplainer, reason: str) -> APIError:
    entry = explainer.entry
    return APIError(422, "unexplainable", f"{entry.tag} cannot be explained: {reason}",
                    {"model": entry.name, "version": entry.version, "reason": reason})


@router.post(
    "/explain", responses=errors(400, 404, 413, 415, 422, 503),
    openapi_extra=json_body(ExplainRequest),
    summary="Explain rows (as /predict takes them) without logging a prediction",
)
async def explain(request: Request, ctx: Context) -> JSONResponse:
    body: Any = None
    try:
        body = await read_json(request, ctx.settings.max_body_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise APIError(422, "invalid_body", "expected {'model': str, 'inputs': [...]}")
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise APIError(422, "invalid_body", "'version' must be a string")
        unexpected = body.keys() - {"model", "version", "inputs"}
        if unexpected:
            raise APIError(422, "invalid_body", f"unexpected fields {sorted(unexpected)}")
        rows = body.get("inputs")
        if isinstance(rows, list) and len(rows) > MAX_EXPLAIN_ROWS:
            raise APIError(413, "too_many_rows", f"at most {MAX_EXPLAIN_ROWS} rows per "
                           "explanation request", {"rows": len(rows)})
        route = ctx.core.router.route(body["model"], version)
        batch = route.model.validator.validate(rows)
        loaded = route.model
        explainer = await to_thread.run_sync(EXPLAINERS.get, loaded.entry, loaded.estimator)
        cap = MAX_EXPLAIN_ROWS if explainer.describe()["method"] in ("tree", "linear") \
            else MAX_AGNOSTIC_ROWS
        if len(batch.rows) > cap:
            raise APIError(413, "too_many_rows", f"at most {cap} rows per explanation request "
                           "with this model's explainer", {"rows": len(batch.rows)})
        explanations = await to_thread.run_sync(_explain, explainer, batch.rows)
    except APIError as error:
        model = body.get("model") if isinstance(body, dict) else None
        ctx.core.count_error(error, model if isinstance(model, str) else None)
        raise
    prediction = loaded.predict(batch.rows)
    return JSONResponse({
        "model": loaded.name, "version": loaded.version, "logged": False,
        "predictions": prediction.values, "explanations": explanations})


@router.get(
    "/predictions/{prediction_id}/explanation", responses=errors(404, 409, 422, 503),
    summary="Explain a logged prediction with the version that served it",
)
async def prediction_explanation(prediction_id: str, ctx: Context) -> JSONResponse:
    store = require_store(ctx)
    found = await to_thread.run_sync(store.get, [prediction_id])
    if not found:
        raise not_found("unknown_prediction", f"no logged prediction {prediction_id!r}")
    record = found[0]
    entry = _registered(record.model, record.version)
    private = [f.name for f in entry.card.features if f.pii is not None]
    if private:
        raise APIError(422, "unexplainable", f"{entry.tag} cannot be explained from the log: "
                       f"personal data {private} is not stored as given (pii); send the row "
                       "to POST /explain instead",
                       {"model": entry.name, "version": entry.version, "pii": private})
    loaded = _loaded(ctx, entry)
    explainer = await to_thread.run_sync(
        EXPLAINERS.get, entry, loaded.estimator if loaded is not None else None)
    explanation = (await to_thread.run_sync(_explain, explainer, [record.features]))[0]
    return JSONResponse({
        "id": record.id, "model": record.model, "version": record.version, "arm": record.arm,
        "ts": record.ts, "prediction": record.prediction,
        "probabilities": record.probabilities, "features": record.features,
        "explanation": explanation})


def _registered(name: str, version: str) -> RegisteredModel:
    for entry in list_models(name):
        if entry.version == version:
            return entry
    raise not_found("unknown_version",
                    f"{name}:{version}, which served the prediction, is no longer registered")


def _loaded(ctx: GatewayContext, entry: RegisteredModel) -> Any:
    served = ctx.core.router.models.get(entry.name)
    for model in served.routed() if served else []:
        if model.version == entry.version:
            return model
    return None


@router.get(
    "/models/{name}/attributions", responses=errors(404, 422, 503),
    summary="Global feature attribution per version, baseline and live, side by side",
)
async def model_attributions(
    name: str, ctx: Context,
    versions: str | None = Query(None, description="Comma-separated versions (default: all).",
                                 examples=["3nhl5ghjx6li2ax4,4abcd5ghjx6li2ax4"]),
) -> JSONResponse:
    entries = await to_thread.run_sync(list_models, name)
    entries = [e for e in entries if e.name == name]
    if not entries:
        raise not_found("unknown_model", f"unknown model {name!r}")
    if versions:
        wanted = [v.strip() for v in versions.split(",") if v.strip()]
        by_version = {e.version: e for e in entries}
        missing = [v for v in wanted if v not in by_version]
        if missing:
            raise not_found("unknown_version", f"model {name!r} has no version {missing[0]!r}",
                            missing=missing)
        entries = [by_version[v] for v in wanted]
    live = await to_thread.run_sync(_live, ctx.store, name)
    return JSONResponse(attribution_view(name, entries, live))


def _live(store: Store | None, name: str) -> dict[str, Any]:
    if store is None:
        return {}
    return (store.kv_get(KV_ATTRIBUTION.format(model=name)) or {}).get("versions", {})


def attribution_view(name: str, entries: list[RegisteredModel],
                     live: dict[str, Any]) -> dict[str, Any]:
    """Per version: explainer, baseline and live importance with ranks; per feature the
    rank in each version and the rank change against the version before it in the list."""
    features: list[str] = []
    out_versions = []
    for entry in entries:
        info = entry.card.explainer
        if info is None:  # registered before explanations: the baseline is computed now
            explainer = EXPLAINERS.get(entry)
            matrix = explainer.baseline_matrix()
            base = ({} if matrix is None else dict(zip(
                entry.card.feature_names, np.abs(matrix).mean(axis=0).tolist(), strict=True)))
            described = explainer.describe()
        else:
            base = dict(info.importance)
            described = {"method": info.method, "output_space": info.output_space,
                         "reason": info.reason, **info.details}
        state = live.get(entry.version) or {}
        live_importance = {k: v for k, v in (state.get("importance") or {}).items()
                           if v is not None and v == v}
        features.extend(f for f in entry.card.feature_names if f not in features)
        own = (state.get("baselines") or {}).get("baseline") or {}
        out_versions.append({
            "version": entry.version, "explainer": described,
            "baseline": _ranked(base), "live": _ranked(live_importance) if live_importance
            else None,
            "sampled": state.get("sampled", 0), "sample_rate": state.get("sample_rate"),
            "ndcg": own.get("ndcg"), "threshold": own.get("threshold"),
            "drift_active": own.get("drift_active", False),
        })
    rows = []
    for feature in features:
        per = {}
        previous_rank = None
        for v in out_versions:
            base_rank = (v["baseline"].get(feature) or {}).get("rank")
            live_rank = ((v["live"] or {}).get(feature) or {}).get("rank")
            per[v["version"]] = {
                "baseline_rank": base_rank, "live_rank": live_rank,
                "rank_change_vs_previous": (None if previous_rank is None or base_rank is None
                                            else previous_rank - base_rank),
                "live_rank_change": (None if live_rank is None or base_rank is None
                                     else base_rank - live_rank),
            }
            previous_rank = base_rank
        rows.append({"feature": feature, "versions": per})
    return {"name": name, "versions": out_versions, "features": rows}


def _ranked(importance: dict[str, float]) -> dict[str, dict[str, float | int]]:
    total = sum(importance.values())
    order = sorted(importance, key=lambda f: -importance[f])
    return {f: {"importance": importance[f], "share": importance[f] / total if total else 0.0,
                "rank": i + 1} for i, f in enumerate(order)}
