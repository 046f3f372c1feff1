"""Physical ranges of a link sample's figures, and the screen that keeps markers out of them.

Loggers write "no value" as a number: a modem's RSRP of -200, -205 or -225 dBm, Android's
2147483647 (``Integer.MAX_VALUE``), an RTT of 0 or -1. Such a figure is no measurement, and
refusing the sample (or skipping the row) for it throws away everything else the sample says:
one marker once turned a 5G -> LTE handover into a "link failure" while 3.9 Mbit/s flowed.
So a figure outside what its quantity can physically be is *not measured*, for
that field only, and counted by field and reason; the rest of the sample stands. The wire
model's bounds (telemetry/wire.py) are these same ranges, so the hub's fast path refuses such
a sample in C and only then does the decoder screen it (telemetry/decode.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

#: Why a figure was not measured. They are metric label values: a closed, small set.
BELOW_RANGE: Final = "below_range"
ABOVE_RANGE: Final = "above_range"
REASONS: Final = (BELOW_RANGE, ABOVE_RANGE)


class Range(NamedTuple):
    """What a quantity can physically be: ``low`` to ``high`` in its unit (``low`` itself
    excluded when ``low_open``), and what to call it when telling an operator."""

    low: float
    high: float
    label: str
    unit: str
    source: str
    low_open: bool = False

    def reason(self, value: float) -> str | None:
        """Why ``value`` is outside the range (``BELOW_RANGE``/``ABOVE_RANGE``), or None."""
        if value < self.low or (self.low_open and value == self.low):
            return BELOW_RANGE
        if value > self.high:
            return ABOVE_RANGE
        return None


# 3GPP TS 38.133 §10.1.6.1: the SS-RSRP reporting range (L3), -156 ... -31 dBm. LTE's RSRP
# reporting range (TS 36.133 §9.1.4, -140 ... -44 dBm) lies inside it, so one range serves both.
RSRP_DBM: Final = Range(-156.0, -31.0, "RSRP", "dBm", "the 3GPP reporting range of TS 38.133")
# 3GPP TS 38.133 §10.1.11.1: the SS-RSRQ reporting range, -43 ... 20 dB.
RSRQ_DB: Final = Range(-43.0, 20.0, "RSRQ", "dB", "the 3GPP reporting range of TS 38.133")
# 3GPP TS 38.133 §10.1.16.1: the SS-SINR reporting range, -23 ... 40 dB.
SINR_DB: Final = Range(-23.0, 40.0, "SINR", "dB", "the 3GPP reporting range of TS 38.133")
# A round trip takes time, so 0 or less is a "no value" marker (0, -1), never an answer. The
# ceiling is a sane one, not a standard's: no probe waits a minute for its answer (a link that
# slow is down whatever the figure says), so anything beyond is a marker or a unit error
# (microseconds written as milliseconds).
RTT_MS: Final = Range(0.0, 60_000.0, "RTT", "ms", "the plausible range", low_open=True)
# Throughput cannot be negative; the ceiling (100 Gbit/s) is the wire's bound of old, far above
# any modem.
KBPS: Final = Range(0.0, 100_000_000.0, "throughput", "kbit/s", "the physical range")

#: Reasons an import gives beside the physical ranges (a mapping's own marker or range for a
#: column, docs/mapping.md), in words.
_IMPORT_REASONS: Final = {
    "mapping_marker": "the mapping's \"no value\" marker for the column",
    "below_mapping_range": "below the mapping's range for the column",
    "above_mapping_range": "above the mapping's range for the column",
    "not_a_number": "not numbers",
}

#: A link sample's screened fields (wire names) and their ranges.
LINK_RANGES: Final[dict[str, Range]] = {
    "rsrp_dbm": RSRP_DBM, "rsrq_db": RSRQ_DB, "sinr_db": SINR_DB, "rtt_ms": RTT_MS,
    "ul_kbps": KBPS._replace(label="UL throughput"),
    "dl_kbps": KBPS._replace(label="DL throughput"),
}


class Screened(NamedTuple):
    """One figure the screen set to None: which field, and why (one of ``REASONS``)."""

    field: str
    reason: str


def screen_link(fields: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Screened, ...]]:
    """``fields`` (a link sample's, by wire name) with each figure outside its physical range
    set to None, and which were and why. An out-of-range ``rtt_ms`` also sets ``probe``
    false: a marker is no probe at all, not a probe without an answer (docs/protocol.md).

    Only finite numbers are judged: NaN, infinity and non-numbers are left as they are, for
    the wire model to refuse.
    """
    out = dict(fields)
    screened: list[Screened] = []
    for name, bounds in LINK_RANGES.items():
        value = out.get(name)
        if not isinstance(value, float | int) or isinstance(value, bool) \
                or not math.isfinite(value):
            continue
        reason = bounds.reason(value)
        if reason is not None:
            out[name] = None
            screened.append(Screened(name, reason))
            if name == "rtt_ms":
                out["probe"] = False
    return out, tuple(screened)


def describe(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One line per field and reason for an operator, from ``{field: {reason: count}}``:
    "RSRP: 12 values below the 3GPP reporting range of TS 38.133 (-156 … -31 dBm), not
    measured"."""
    lines = []
    for name, reasons in sorted(counts.items()):
        bounds = LINK_RANGES.get(name)
        for reason, n in sorted(reasons.items()):
            values = "value" if n == 1 else "values"
            if bounds is None or reason not in REASONS:
                # a field a newer l4mon screens, or an import's own reason (a mapping's
                # marker or range): still said, plainly
                label = name if bounds is None else bounds.label
                words = _IMPORT_REASONS.get(reason, reason.replace("_", " "))
                lines.append(f"{label}: {n} {values} {words}, not measured")
                continue
            side = "below" if reason == BELOW_RANGE else "above"
            low = f"> {_number(bounds.low)}" if bounds.low_open else _number(bounds.low)
            lines.append(f"{bounds.label}: {n} {values} {side} {bounds.source} ({low} … "
                         f"{_number(bounds.high)} {bounds.unit}), not measured")
    return lines


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def tally(screened: tuple[Screened, ...], into: dict[str, dict[str, int]]) -> None:
    """Add ``screened`` to the ``{field: {reason: count}}`` totals ``into``."""
    for field, reason in screened:
        reasons = into.setdefault(field, {})
        reasons[reason] = reasons.get(reason, 0) + 1


def merged(counts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Several ``{field: {reason: count}}`` added up, sorted by field and reason."""
    total: dict[str, dict[str, int]] = {}
    for each in counts:
        for name, reasons in each.items():
            mine = total.setdefault(name, {})
            for reason, n in reasons.items():
                mine[reason] = mine.get(reason, 0) + n
    return {name: dict(sorted(reasons.items())) for name, reasons in sorted(total.items())}
