"""Bytes off the wire → a typed message, or a reason it was refused.

Refusal is the normal answer to bad input, not an error: the hub quarantines the raw bytes with
the reason and carries on. Nothing here may raise anything but ``Rejected``.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from telemetry.topics import Route, TopicCache
from telemetry.wire import (
    LinkSample,
    Message,
    RsuStatus,
    ServiceStatus,
    VehicleEvent,
    VehicleState,
)

#: Quarantine reasons. They are metric label values, so the set is closed and small.
UNKNOWN_TOPIC: Final = "unknown_topic"
OVERSIZE: Final = "oversize"
UNSUPPORTED_ENCODING: Final = "unsupported_encoding"
MALFORMED: Final = "malformed"
SCHEMA: Final = "schema"
OUT_OF_RANGE: Final = "out_of_range"
NON_FINITE: Final = "non_finite"
TS_FUTURE: Final = "ts_future"
TS_PAST: Final = "ts_past"
#: Decided by the transport (l4mon/ingest/identity.py), not here: the broker-stamped sender is
#: missing or is not the vehicle or RSU the topic names.
IDENTITY_MISMATCH: Final = "identity_mismatch"
REASONS: Final = (
    UNKNOWN_TOPIC, OVERSIZE, UNSUPPORTED_ENCODING, MALFORMED, SCHEMA, OUT_OF_RANGE, NON_FINITE,
    TS_FUTURE, TS_PAST, IDENTITY_MISMATCH,
)

JSON_TYPES: Final = frozenset({None, "", "application/json"})
MSGPACK_TYPES: Final = frozenset({"application/msgpack", "application/x-msgpack",
                                  "application/vnd.msgpack"})

_TYPES: Final[dict[str, type[Message]]] = {
    "state": VehicleState, "link": LinkSample, "event": VehicleEvent, "rsu": RsuStatus,
    "service": ServiceStatus,
}


class Rejected(Exception):
    """A message that must be quarantined; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _classify(error: msgspec.ValidationError) -> str:
    text = str(error)
    if text.startswith("Number out of range"):
        return NON_FINITE  # e.g. 1e999, which would become inf
    if ">=" in text or "<=" in text or "length" in text or "matching regex" in text:
        return OUT_OF_RANGE
    if text.startswith("Invalid enum value"):
        return OUT_OF_RANGE
    return SCHEMA


def _msgpack_has_non_finite(payload: bytes) -> bool:
    try:
        return _has_non_finite(msgspec.msgpack.decode(payload))
    except msgspec.DecodeError:  # broken further on: the first error found is the reason
        return False


def _has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


class Decoder:
    """Decodes and validates one message; the clock bounds are passed per call (replay-safe)."""

    __slots__ = ("_topics", "_json", "_msgpack", "max_payload", "max_ahead_s", "max_age_s")

    def __init__(self, *, max_payload: int = 16_384, max_ahead_s: float = 3_600.0,
                 max_age_s: float = 86_400.0) -> None:
        if max_payload <= 0 or max_ahead_s < 0 or max_age_s <= 0:
            raise ValueError("decoder limits must be positive")
        self._topics = TopicCache()
        self._json = {k: msgspec.json.Decoder(t) for k, t in _TYPES.items()}
        self._msgpack = {k: msgspec.msgpack.Decoder(t) for k, t in _TYPES.items()}
        self.max_payload = max_payload
        self.max_ahead_s = max_ahead_s
        self.max_age_s = max_age_s

    def json_decoder(self, kind: str) -> msgspec.json.Decoder:
        return self._json[kind]

    def decode(self, topic: str, payload: bytes, now: float,
               content_type: str | None = None) -> tuple[Route, Message]:
        """Return ``(route, message)`` or raise ``Rejected``."""
        route = self._topics.get(topic)
        if route is None:
            raise Rejected(UNKNOWN_TOPIC, "not an l4mon/v1 topic")
        if len(payload) > self.max_payload:
            raise Rejected(OVERSIZE, f"{len(payload)} bytes > {self.max_payload}")
        if content_type in JSON_TYPES:
            decoder = self._json[route.kind]
        elif content_type in MSGPACK_TYPES:
            decoder = self._msgpack[route.kind]  # type: ignore[assignment]
        else:
            raise Rejected(UNSUPPORTED_ENCODING, f"content type {content_type!r}")
        try:
            msg = decoder.decode(payload)
        except msgspec.ValidationError as error:
            reason = _classify(error)
            # MessagePack, unlike JSON, can carry NaN and inf, which fail the bounds check.
            if reason == OUT_OF_RANGE and decoder is not self._json[route.kind] \
                    and _msgpack_has_non_finite(payload):
                reason = NON_FINITE
            raise Rejected(reason, str(error)) from None
        except msgspec.DecodeError as error:
            raise Rejected(MALFORMED, str(error)) from None
        ts = msg.ts
        if ts > now + self.max_ahead_s:
            raise Rejected(TS_FUTURE, f"ts {ts:.3f} is {ts - now:.0f} s ahead of the hub")
        if ts < now - self.max_age_s and route.kind != "service":
            # A service status is a state, kept by the broker (retained, or a will fixed when
            # the vehicle connected): old is what it is, not a stale sample.
            raise Rejected(TS_PAST, f"ts {ts:.3f} is {now - ts:.0f} s behind the hub")
        return route, msg
