"""Bytes off the wire → a typed message, or a reason it was refused.

Refusal is the normal answer to bad input, not an error: the hub quarantines the raw bytes with
the reason and carries on. Nothing here may raise anything but ``Rejected``.

One exception to refusing: a link sample whose radio, probe or throughput figure is outside its
physical range (a logger's "no value" marker, telemetry/ranges.py) is accepted with that figure
set to None, and the decoder says which it screened. Only the slow path pays for this: the
wire model's bounds are the physical ranges, so a sample within them decodes as before.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import msgspec

from telemetry.ranges import Screened, screen_link
from telemetry.topics import Route, TopicCache, topic_fault
from telemetry.wire import (
    LenientLinkSample,
    LinkSample,
    Message,
    RsuStatus,
    ServiceStatus,
    VehicleEvent,
    VehicleState,
)

#: Quarantine reasons. They are metric label values, so the set is closed and small.
UNKNOWN_TOPIC: Final = "unknown_topic"
#: A v1 topic whose site, vehicle, RSU or link name is not allowed (``..``, a control or
#: bidirectional character, telemetry/topics.py ``valid_name``).
BAD_NAME: Final = "bad_name"
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
#: Decided by the transport too (l4mon/ingest/refusals.py): a retained message on an event
#: topic, the past replayed by the broker. (A packet over the hub's bound is ``OVERSIZE``.)
RETAINED_EVENT: Final = "retained_event"
REASONS: Final = (
    UNKNOWN_TOPIC, BAD_NAME, OVERSIZE, UNSUPPORTED_ENCODING, MALFORMED, SCHEMA, OUT_OF_RANGE,
    NON_FINITE, TS_FUTURE, TS_PAST, IDENTITY_MISMATCH, RETAINED_EVENT,
)

JSON_TYPES: Final = frozenset({None, "", "application/json"})
MSGPACK_TYPES: Final = frozenset({"application/msgpack", "application/x-msgpack",
                                  "application/vnd.msgpack"})

_TYPES: Final[dict[str, type[Message]]] = {
    "state": VehicleState, "link": LinkSample, "event": VehicleEvent, "rsu": RsuStatus,
    "service": ServiceStatus,
}


class Decoded(NamedTuple):
    """A message that passed: where it came from, what it says, and the link figures screened
    out of it as not measured (telemetry/ranges.py; empty for every other message)."""

    route: Route
    message: Message
    screened: tuple[Screened, ...] = ()


class Rejected(Exception):
    """A message that must be quarantined; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _classify(error: msgspec.ValidationError) -> str:
    text = str(error).split(" - at ", maxsplit=1)[0]  # what is wrong, not where
    if text.startswith("Number out of range"):
        return NON_FINITE  # e.g. 1e999, which would become inf
    # ">", "<": the bounds gt/lt (an RTT must be > 0) besides ge/le
    if ">" in text or "<" in text or "length" in text or "matching regex" in text:
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

    __slots__ = ("_json", "_lenient_json", "_lenient_msgpack", "_msgpack", "_topics",
                 "max_age_s", "max_ahead_s", "max_payload")

    def __init__(self, *, max_payload: int = 16_384, max_ahead_s: float = 3_600.0,
                 max_age_s: float = 86_400.0) -> None:
        if max_payload <= 0 or max_ahead_s < 0 or max_age_s <= 0:
            raise ValueError("decoder limits must be positive")
        self._topics = TopicCache()
        self._json = {k: msgspec.json.Decoder(t) for k, t in _TYPES.items()}
        self._msgpack = {k: msgspec.msgpack.Decoder(t) for k, t in _TYPES.items()}
        self._lenient_json = msgspec.json.Decoder(LenientLinkSample)
        self._lenient_msgpack = msgspec.msgpack.Decoder(LenientLinkSample)
        self.max_payload = max_payload
        self.max_ahead_s = max_ahead_s
        self.max_age_s = max_age_s

    def json_decoder(self, kind: str) -> msgspec.json.Decoder:
        return self._json[kind]

    def decode(self, topic: str, payload: bytes, now: float,
               content_type: str | None = None) -> Decoded:
        """Return ``Decoded(route, message, screened)`` or raise ``Rejected``."""
        route = self._topics.get(topic)
        if route is None:
            named, detail = topic_fault(topic)
            raise Rejected(BAD_NAME if named else UNKNOWN_TOPIC, detail)
        if len(payload) > self.max_payload:
            raise Rejected(OVERSIZE, f"{len(payload)} bytes > {self.max_payload}")
        if content_type in JSON_TYPES:
            json = True
            decoder = self._json[route.kind]
        elif content_type in MSGPACK_TYPES:
            json = False
            decoder = self._msgpack[route.kind]  # type: ignore[assignment]
        else:
            raise Rejected(UNSUPPORTED_ENCODING, f"content type {content_type!r}")
        screened: tuple[Screened, ...] = ()
        try:
            msg = decoder.decode(payload)
        except msgspec.ValidationError as error:
            if route.kind != "link":
                raise Rejected(_refusal(error, json, payload), str(error)) from None
            msg, screened = self._screen_link(payload, json, error)
        except msgspec.DecodeError as error:
            raise Rejected(MALFORMED, str(error)) from None
        ts = msg.ts
        if ts > now + self.max_ahead_s:
            raise Rejected(TS_FUTURE, f"ts {ts:.3f} is {ts - now:.0f} s ahead of the hub")
        if ts < now - self.max_age_s and route.kind != "service":
            # A service status is a state, kept by the broker (retained, or a will fixed when
            # the vehicle connected): old is what it is, not a stale sample.
            raise Rejected(TS_PAST, f"ts {ts:.3f} is {now - ts:.0f} s behind the hub")
        return Decoded(route, msg, screened)

    def _screen_link(self, payload: bytes, json: bool, error: msgspec.ValidationError
                     ) -> tuple[LinkSample, tuple[Screened, ...]]:
        """A link sample that failed validation, read again with its figures bounded only to
        finite values: those outside their physical range become None (not measured). Any
        other fault refuses it as the strict reading would have."""
        lenient = self._lenient_json if json else self._lenient_msgpack
        try:
            raw = lenient.decode(payload)
        except msgspec.ValidationError as other:
            raise Rejected(_refusal(other, json, payload), str(other)) from None
        except msgspec.DecodeError as other:
            raise Rejected(MALFORMED, str(other)) from None
        fields, screened = screen_link(msgspec.structs.asdict(raw))
        if not screened:  # failed for a reason the screen does not know: refused, as ever
            raise Rejected(_refusal(error, json, payload), str(error)) from None
        return LinkSample(**fields), screened


def _refusal(error: msgspec.ValidationError, json: bool, payload: bytes) -> str:
    """The quarantine reason of a validation error."""
    reason = _classify(error)
    # MessagePack, unlike JSON, can carry NaN and inf, which fail the bounds check.
    if reason == OUT_OF_RANGE and not json and _msgpack_has_non_finite(payload):
        return NON_FINITE
    return reason
