"""What the OpenAPI document says of bodies and errors, so client generators and fuzzers
can use it: every request body, every status an endpoint answers, the error shapes.

Bodies are parsed by hand (content type, size and depth first), so their schemas are given
as ``openapi_extra``, inlined (no ``$defs``, which OpenAPI 3.0 cannot resolve there).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

STATUS_TEXT = {
    400: "Malformed JSON (or nested deeper than allowed).",
    404: "Unknown model, version or path.",
    409: "The prediction log is switched off.",
    413: "Body, rows or alerts over the configured limits.",
    415: "The body is not sent as JSON.",
    422: "The body or a parameter does not match what the endpoint takes.",
    500: "The model itself raised on valid input (model_error).",
    503: "The store does not answer (log_unavailable, store_unavailable, not_ready): retry.",
}


class ErrorBody(BaseModel):
    type: str = Field(description="Stable machine-readable reason, e.g. unknown_model.")
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """DESIGN.md's error body."""

    error: ErrorBody


class V2ErrorResponse(BaseModel):
    """The Open Inference Protocol's error body, with driftgate's type and details beside."""

    error: str = Field(description="What went wrong.")
    type: str
    details: Any = None


def errors(*codes: int, v2: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for FastAPI: each status with its description and error schema."""
    model = V2ErrorResponse if v2 else ErrorResponse
    return {code: {"model": model, "description": STATUS_TEXT[code]} for code in codes}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every ``$ref`` to its ``$defs`` replaced by the definition."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def json_body(model: type[BaseModel], *extra_types: str) -> dict[str, Any]:
    """``openapi_extra=`` declaring a required JSON request body of ``model``."""
    schema = inline_schema(model)
    content = {media: {"schema": schema} for media in ("application/json", *extra_types)}
    return {"requestBody": {"required": True, "content": content}}


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(description="model and retrain=\"true\" make a retrain "
                                   "request of a firing alert.")
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    version: Literal["4"]
    groupKey: str = ""
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(max_length=1000)


Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                   "INT64", "FP16", "FP32", "FP64", "BYTES"]


class InferenceTensor(BaseModel):
    name: str = Field(description="A feature of the card, or one [N, d] tensor of all "
                      "numeric features in card order.")
    shape: list[int] = Field(min_length=1)
    datatype: Datatype
    data: list[Any] = Field(default_factory=list, description="Row-major, flat or nested; "
                            "absent with the binary tensor data extension.")
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """Open Inference Protocol v2 inference request."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferenceTensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
