"""Open Inference Protocol v2 REST (KServe / Triton / MLServer dialect) over the same core.

Inputs: one tensor per feature (shape ``[N]`` or ``[N, 1]``; FP*/INT*/UINT* for numeric,
BOOL for boolean, BYTES for categorical features), or one tensor of shape ``[N, d]`` holding
all numeric features in card order. Tensor data may be JSON or the binary tensor data
extension (``Inference-Header-Content-Length``). Outputs: ``predict``, ``predict_proba``
(classifiers) and ``prediction_id`` (for /feedback).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.api_context import Context, GatewayContext
from service.error_counting import CountedRoute
from service.errors import APIError, bad_request, invalid
from service.http import (
    FastJSONResponse,
    GuardedRoute,
    current_trace_id,
    parse_json,
    read_body,
    request_id,
    require_content_type,
)
from service.openapi_docs import InferenceRequest, errors, json_body
from service.runtime import LoadedModel

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"], route_class=GuardedRoute)
infer_router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"],
                         route_class=CountedRoute)  # inference errors are counted

NUMERIC_TYPES: dict[str, Any] = {
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
KIND_TYPES = {"numeric": set(NUMERIC_TYPES), "boolean": {"BOOL"}, "categorical": {"BYTES"}}
KIND_DATATYPE = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}


V2_NOT_FOUND = errors(404, v2=True)
INFER_DOCS: dict[str, Any] = {
    "responses": errors(400, 404, 413, 415, 422, 500, 503, v2=True),
    "openapi_extra": json_body(InferenceRequest, "application/octet-stream"),
}


@router.get("", summary="Server metadata")
async def server_metadata() -> JSONResponse:
    return JSONResponse(
        {"name": "driftgate", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
    )


@router.get("/health/live", summary="Server liveness")
async def live() -> JSONResponse:
    return JSONResponse({"live": True})


@router.get("/health/ready", responses=errors(503, v2=True), summary="Server readiness")
async def ready(ctx: Context) -> JSONResponse:
    if not await to_thread.run_sync(ctx.ready):
        raise APIError(503, "not_ready", "the store does not answer")
    return JSONResponse({"ready": True})


def _model(ctx: GatewayContext, name: str, version: str | None) -> LoadedModel:
    return ctx.core.router.served(name).route(version).model


def _metadata(ctx: GatewayContext, model: LoadedModel) -> dict[str, Any]:
    served = ctx.core.router.served(model.name)
    outputs = [{"name": "predict", "datatype": _output_type(model), "shape": [-1]},
               {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]}]
    if model.card.task == "classification":
        labels = model.card.class_labels or []
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(labels)]})
    return {
        "name": model.name,
        "versions": [m.version for m in served.loaded_versions()],
        "platform": "driftgate",
        "inputs": [
            {"name": f.name, "datatype": KIND_DATATYPE[f.kind], "shape": [-1]}
            for f in model.card.features
        ],
        "outputs": outputs,
        "parameters": {"task": model.card.task, "class_labels": model.card.class_labels},
    }


def _output_type(model: LoadedModel) -> str:
    return "BYTES" if model.card.task == "classification" else "FP64"


@router.get("/models/{name}", responses=V2_NOT_FOUND, summary="Model metadata")
async def model_metadata(name: str, ctx: Context) -> JSONResponse:
    return JSONResponse(_metadata(ctx, _model(ctx, name, None)))


@router.get("/models/{name}/versions/{version}", responses=V2_NOT_FOUND,
            summary="Model version metadata")
async def model_version_metadata(name: str, version: str, ctx: Context) -> JSONResponse:
    return JSONResponse(_metadata(ctx, _model(ctx, name, version)))


@router.get("/models/{name}/ready", responses=V2_NOT_FOUND, summary="Model readiness")
async def model_ready(name: str, ctx: Context) -> JSONResponse:
    _model(ctx, name, None)
    return JSONResponse({"name": name, "ready": True})


@router.get("/models/{name}/versions/{version}/ready", responses=V2_NOT_FOUND,
            summary="Model version readiness")
async def model_version_ready(name: str, version: str, ctx: Context) -> JSONResponse:
    _model(ctx, name, version)
    return JSONResponse({"name": name, "version": version, "ready": True})


@infer_router.post("/models/{name}/infer", summary="Inference", **INFER_DOCS)
async def infer(name: str, request: Request, ctx: Context) -> Response:
    return await _infer(ctx, name, None, request)


@infer_router.post(
    "/models/{name}/versions/{version}/infer", summary="Inference on one version", **INFER_DOCS
)
async def infer_version(name: str, version: str, request: Request, ctx: Context) -> Response:
    return await _infer(ctx, name, version, request)


async def _infer(
    ctx: GatewayContext, name: str, version: str | None, request: Request
) -> Response:
    core = ctx.core
    body = await _read_infer_body(request, ctx.settings.max_body_bytes)
    route = core.router.route(name, version)
    rows = tensors_to_rows(route.model, body)
    result = await core.predict(
        name, version, rows, request_id(request), current_trace_id(), route=route
    )
    served = result.model
    n = len(result.values)
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": _output_type(served), "shape": [n],
         "data": [str(v) for v in result.values] if served.card.task == "classification"
         else result.values},
        {"name": "prediction_id", "datatype": "BYTES", "shape": [n], "data": result.ids},
    ]
    if result.probabilities is not None:
        labels = [str(label) for label in served.card.class_labels or []]
        flat = [p[label] for p in result.probabilities for label in labels]
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [n, len(labels)],
             "data": flat}
        )
    response: dict[str, Any] = {
        "model_name": served.name, "model_version": served.version, "outputs": outputs,
    }
    if isinstance(body.get("id"), str):
        response["id"] = body["id"]
    return FastJSONResponse(response)


INFER_TYPES = frozenset({"application/json", "application/octet-stream"})


async def _read_infer_body(request: Request, max_bytes: int) -> dict[str, Any]:
    # tritonclient sends no Content-Type; browsers send one on every cross-site form post
    require_content_type(request, INFER_TYPES, allow_missing=True)
    raw = await read_body(request, max_bytes)
    header_length = request.headers.get("inference-header-content-length")
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(raw):
            raise bad_request("malformed_body", "bad Inference-Header-Content-Length")
        raw, binary = raw[: int(header_length)], raw[int(header_length):]
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise invalid("invalid_body", "expected {'inputs': [tensor, ...]}")
    if binary:
        _attach_binary(body["inputs"], binary)
    return body


def _attach_binary(inputs: list[Any], binary: bytes) -> None:
    position = 0
    for tensor in inputs:
        params = tensor.get("parameters") or {} if isinstance(tensor, dict) else {}
        size = params.get("binary_data_size")
        if size is None:
            continue
        if type(size) is not int or size < 0:
            raise invalid("invalid_tensor", "binary_data_size must be a non-negative integer")
        chunk = binary[position : position + size]
        position += size
        try:
            tensor["data"] = _decode_binary(tensor.get("datatype"), chunk)
        except (ValueError, UnicodeDecodeError) as exc:
            message = f"binary data of {tensor.get('name')!r}: {exc}"
            raise invalid("invalid_tensor", message) from None
    if position != len(binary):
        raise bad_request("malformed_body", "binary tensor data does not match the sizes given")


def _decode_binary(datatype: Any, chunk: bytes) -> list[Any]:
    if datatype == "BYTES":
        values, i = [], 0
        while i < len(chunk):
            length = int.from_bytes(chunk[i : i + 4], "little")
            values.append(chunk[i + 4 : i + 4 + length].decode())
            i += 4 + length
        return values
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if (raw > 1).any():
            raise ValueError("BOOL bytes must be 0 or 1")
        return raw.astype(bool).tolist()
    if datatype not in NUMERIC_TYPES:
        raise invalid("wrong_datatype", f"unsupported datatype {datatype!r}")
    return np.frombuffer(chunk, dtype=NUMERIC_TYPES[datatype]).tolist()


def tensors_to_rows(model: LoadedModel, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn v2 input tensors into request rows (then validated like /predict rows)."""
    features = model.card.features
    tensors = body["inputs"]
    required = {"name", "shape", "datatype", "data"}
    for tensor in tensors:
        if not isinstance(tensor, dict) or not required <= tensor.keys():
            raise invalid("invalid_tensor", "each input needs name, shape, datatype and data")
        if not isinstance(tensor["name"], str) or not isinstance(tensor["datatype"], str):
            raise invalid("invalid_tensor", "tensor name and datatype must be strings")
    by_name = {f.name: f for f in features}
    if len(tensors) == 1 and tensors[0]["name"] not in by_name:
        return _matrix_rows(model, tensors[0])
    columns: dict[str, list[Any]] = {}
    n_rows: int | None = None
    for tensor in tensors:
        name = tensor["name"]
        spec = by_name.get(name)
        if spec is None:
            raise invalid("unknown_feature", f"unknown input {name!r}", {"expected": list(by_name)})
        if tensor["datatype"] not in KIND_TYPES[spec.kind]:
            raise invalid(
                "wrong_datatype",
                f"input {name!r} has datatype {tensor['datatype']}, expected "
                f"{sorted(KIND_TYPES[spec.kind])}",
            )
        data = coerce(name, tensor["datatype"], _flat(tensor["data"]))
        shape = tensor["shape"]
        if not _is_shape(shape) or shape[0] != len(data) or any(d != 1 for d in shape[1:]):
            raise invalid("wrong_shape", f"input {name!r}: shape {shape} does not match its data")
        if n_rows is not None and n_rows != len(data):
            raise invalid("wrong_shape", "all inputs must have the same number of rows")
        n_rows = len(data)
        columns[name] = data
    missing = [name for name in by_name if name not in columns]
    if missing:
        raise invalid("missing_feature", f"missing input {missing[0]!r}", {"missing": missing})
    return [{name: columns[name][i] for name in by_name} for i in range(n_rows or 0)]


def _matrix_rows(model: LoadedModel, tensor: dict[str, Any]) -> list[dict[str, Any]]:
    features = model.card.features
    names = [f.name for f in features]
    shape = tensor["shape"]
    if any(f.kind != "numeric" for f in features):
        raise invalid("unknown_feature", f"unknown input {tensor['name']!r}; send one tensor "
                      "per feature for models with categorical or boolean features")
    if tensor["datatype"] not in NUMERIC_TYPES:
        raise invalid("wrong_datatype", f"datatype {tensor['datatype']} is not numeric")
    data = coerce(tensor["name"], tensor["datatype"], _flat(tensor["data"]))
    if not _is_shape(shape) or len(shape) != 2 or shape[1] != len(names) \
            or shape[0] * shape[1] != len(data):
        raise invalid(
            "wrong_shape", f"expected shape [N, {len(names)}] matching the data, got {shape}"
        )
    width = len(names)
    return [dict(zip(names, data[i * width : (i + 1) * width], strict=True))
            for i in range(shape[0])]


def coerce(name: str, datatype: str, data: list[Any]) -> list[Any]:
    """Tensor data as its datatype says: integers for INT*/UINT* (within range), values
    rounded to the precision of FP16/FP32, ``true``/``false`` for BOOL; 422 otherwise.

    >>> coerce("x", "FP32", [0.1, None])
    [0.10000000149011612, None]
    >>> coerce("x", "INT8", [1, 300])
    Traceback (most recent call last):
    ...
    service.errors.APIError: input 'x': INT8 data must be integers in [-128, 127]
    """
    if datatype == "BOOL":
        if not all(type(v) is bool or v is None for v in data):
            raise invalid("wrong_datatype", f"input {name!r}: BOOL data must be true or false")
        return data
    if datatype not in NUMERIC_TYPES:
        return data  # BYTES: the card's validation checks the strings
    dtype = NUMERIC_TYPES[datatype]
    if datatype.startswith(("INT", "UINT")):
        info = np.iinfo(dtype)
        if not all(v is None or (type(v) is int and info.min <= v <= info.max) for v in data):
            raise invalid("wrong_datatype",
                          f"input {name!r}: {datatype} data must be integers in "
                          f"[{info.min}, {info.max}]")  # fmt: skip
        return data
    if not all(v is None or type(v) in (int, float) for v in data):
        raise invalid("wrong_datatype", f"input {name!r}: {datatype} data must be numbers")
    if datatype == "FP64":
        return data
    try:
        with np.errstate(over="ignore"):  # beyond FP16/FP32 range: inf, rejected later
            return [None if v is None else float(dtype(v)) for v in data]
    except OverflowError:
        raise invalid("infinite_value", f"input {name!r}: a value exceeds {datatype}") from None


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and len(shape) >= 1 and all(
        type(d) is int and d >= 0 for d in shape
    )


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise invalid("invalid_tensor", "tensor data must be a list")
    if data and isinstance(data[0], list):
        return [v for row in data for v in _flat(row)]
    return data
