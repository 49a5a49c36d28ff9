"""Client errors: one exception type rendered as DESIGN.md's JSON error body."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A request the client got wrong (4xx), or a service state it must retry (503).

    ``type`` is a stable machine-readable reason; it is also the ``reason`` label of
    ``driftgate_prediction_errors_total``.
    """

    def __init__(
        self, status: int, type: str, message: str, details: Any = None, model: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details
        self.model = model

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.message, "details": self.details}}


def not_found(type: str, message: str, **details: Any) -> APIError:
    return APIError(404, type, message, details or None)


def invalid(type: str, message: str, details: Any = None) -> APIError:
    return APIError(422, type, message, details)


def bad_request(type: str, message: str, details: Any = None) -> APIError:
    return APIError(400, type, message, details)
