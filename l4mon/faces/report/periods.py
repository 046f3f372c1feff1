"""The report's period: epoch seconds or ISO 8601 times, from the CLI or the API."""

from __future__ import annotations

import datetime as dt
import math

from l4mon.faces.report.inputs import ReportError


def parse_time(text: str | None, what: str) -> float | None:
    """Epoch seconds (``1767225600``) or ISO 8601 (``2026-11-22T02:00``, UTC unless an
    offset is given); None for no bound."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ReportError(f"{what}: {text!r} is neither epoch seconds nor an ISO 8601 "
                              "time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    if not math.isfinite(value) or value < 0:
        raise ReportError(f"{what}: {text!r} is not a time")
    return value
