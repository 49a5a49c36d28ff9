"""One rule for points in time given by users (HTTP query parameters and the CLI).

>>> parse_time("1767225600")
1767225600.0
>>> parse_time("2026-01-01T00:00:00Z")
1767225600.0
>>> parse_time("2026-01-01")  # no zone: UTC
1767225600.0
>>> parse_time("yesterday")
Traceback (most recent call last):
...
ValueError: 'yesterday' is neither unix seconds nor an ISO 8601 date/time
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from service.errors import APIError


def parse_time(text: str | None) -> float | None:
    """Unix seconds from a number or an ISO 8601 date/time (UTC if no zone is given)."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither unix seconds nor an ISO 8601 date/time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a finite number of seconds")
    return seconds


def since_parameter(text: str | None) -> float | None:
    """A ``since`` query parameter as unix seconds; 422 ``invalid_request`` if unreadable."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise APIError(422, "invalid_request", str(exc), {"parameter": "since"}) from None
