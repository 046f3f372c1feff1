"""Decoder: every quarantine reason, both encodings, forward compatibility and fuzzing."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from l4mon.hub import Hub
from l4mon.store.journal import open_journal
from telemetry.decode import (
    BAD_NAME,
    MALFORMED,
    NON_FINITE,
    OUT_OF_RANGE,
    OVERSIZE,
    REASONS,
    SCHEMA,
    TS_FUTURE,
    TS_PAST,
    UNKNOWN_TOPIC,
    UNSUPPORTED_ENCODING,
    Decoder,
    Rejected,
)
from telemetry.ranges import ABOVE_RANGE, BELOW_RANGE, LINK_RANGES, Screened
from telemetry.topics import (
    event_topic,
    link_topic,
    parse_topic,
    rsu_topic,
    state_topic,
    valid_name,
)
from telemetry.wire import LenientLinkSample, LinkSample, RsuStatus, VehicleEvent, VehicleState

NOW = 1_700_000_000.0
MSGPACK = "application/msgpack"

LINK_T = link_topic("s1", "v1", "l5g")
STATE_T = state_topic("s1", "v1")
EVENT_T = event_topic("s1", "v1")
RSU_T = rsu_topic("s1", "r1")

GOOD: dict[str, dict[str, Any]] = {
    "link": {"ts": NOW - 0.05, "seq": 7, "rat": "nr", "cell_id": "c-1", "rsrp_dbm": -84.5,
             "rsrq_db": -10.5, "sinr_db": 17.0, "rtt_ms": 18.4, "ul_kbps": 31250.0,
             "dl_kbps": 72000.0},
    "state": {"ts": NOW - 0.05, "seq": 3, "lat": 36.06, "lon": 136.34, "speed_mps": 5.5,
              "heading_deg": 270.0, "mode": "autonomous", "v2i_rx": {"r1": 12}},
    "event": {"ts": NOW - 1.0, "kind": "takeover_request", "seq": 2, "detail": "door"},
    "rsu": {"ts": NOW - 0.2, "seq": 9, "intersection": "ix-a", "health": "degraded",
            "boot_id": "b1", "tx_msgs": 100, "rx_msgs": 50, "backhaul_rtt_ms": 3.5,
            "cpu_pct": 12.0, "weather": "snow"},
}
TOPICS = {"link": LINK_T, "state": STATE_T, "event": EVENT_T, "rsu": RSU_T}
TYPES: dict[str, type[Any]] = {
    "link": LinkSample, "state": VehicleState, "event": VehicleEvent, "rsu": RsuStatus,
}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


def _with(which: str, /, **changes: Any) -> dict[str, Any]:
    data = dict(GOOD[which])
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return data


_DROP = object()


def _reason(topic: str, payload: bytes, content_type: str | None = None,
            decoder: Decoder | None = None) -> str:
    with pytest.raises(Rejected) as info:
        (decoder or Decoder()).decode(topic, payload, NOW, content_type)
    assert info.value.reason in REASONS
    assert info.value.detail
    return info.value.reason


# -- unknown_topic -------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", [
    "l4mon/v1/s1/vehicle/#",
    "l4mon/v1/s1/vehicle/v1/#",
    "l4mon/v1/s1/vehicle/v1/link/l5g/extra",
    "l4mon/v1/s1/vehicle/v1/state/extra",
    "l4mon/v1/s1/rsu/r1/status/extra",
    "l4mon/v1/s1/vehicle/v1/link",
    "l4mon/v1/s1/vehicle/v1",
    "l4mon/v2/s1/vehicle/v1/state",
    "L4MON/v1/s1/vehicle/v1/state",
    "/l4mon/v1/s1/vehicle/v1/state",
    "l4mon/v1/s1/vehicle/v1/pose",
    "l4mon/v1/s1/rsu/r1/state",
    "l4mon/v1/s1/truck/v1/state",
    "",
])
def test_unknown_topic(topic: str) -> None:
    """Wrong shapes and wrong version are unknown_topic."""
    assert _reason(topic, _json(GOOD["state"])) == UNKNOWN_TOPIC


@pytest.mark.parametrize("topic", [
    "l4mon/v1/s1/vehicle/+/state",
    "l4mon/v1/+/vehicle/v1/state",
    "l4mon/v1/s1/vehicle/v1/link/+",
    "l4mon/v1/s1/vehicle/bad name/state",
    "l4mon/v1/s 1/vehicle/v1/state",
    "l4mon/v1/s1/vehicle/v1/link/l 5g",
    f"l4mon/v1/s1/vehicle/{'v' * 65}/state",
    f"l4mon/v1/{'s' * 65}/vehicle/v1/state",
    f"l4mon/v1/s1/vehicle/v1/link/{'l' * 65}",
    "l4mon/v1//vehicle/v1/state",
    "l4mon/v1/s1/vehicle/../state",
    "l4mon/v1/s1/vehicle/./state",
    "l4mon/v1/../rsu/r1/status",
    "l4mon/v1/s1/rsu/..../status",
    "l4mon/v1/s1/vehicle/shuttle\u202e10-/state",  # right-to-left override
    "l4mon/v1/s1/vehicle/shuttle\u200f01/state",  # right-to-left mark
    "l4mon/v1/s1/vehicle/shuttle\u206601/state",  # left-to-right isolate
    "l4mon/v1/s1/vehicle/shuttle-01\n/state",  # a newline, which ``$`` would let through
    "l4mon/v1/s1/vehicle/shuttle\x0001/state",
    "l4mon/v1/s1/vehicle/shuttle\x1b[2J/state",  # a terminal escape
    "l4mon/v1/s1/vehicle/shuttle\uff10\uff11/state",  # full-width digits
])
def test_bad_name(topic: str) -> None:
    """A v1 topic whose site, vehicle, RSU or link name is not allowed is bad_name: path
    steps, wildcards, spaces, control and bidirectional characters, non-ASCII look-alikes;
    the detail shows the name escaped, never as it would render."""
    payload = _json(GOOD["rsu"] if "/rsu/" in topic else GOOD["state"])
    with pytest.raises(Rejected) as info:
        Decoder().decode(topic, payload, NOW)
    assert info.value.reason == BAD_NAME
    assert info.value.detail.isascii() and "not allowed" in info.value.detail


def test_a_name_needs_a_letter_or_digit() -> None:
    """Names of only dots, dashes or colons are refused; one letter or digit makes a name."""
    for name in (".", "..", "-", "_:.-"):
        assert not valid_name(name), name
    for name in ("a", "0", ".a", "rsu.7", "shuttle-01", "x" * 64):
        assert valid_name(name), name


def test_name_of_64_chars_is_accepted() -> None:
    """The name limit is inclusive: 64 characters is still a valid vehicle id."""
    route, _, _ = Decoder().decode(state_topic("s1", "v" * 64), _json(GOOD["state"]), NOW)
    assert route.source == "v" * 64


# -- oversize / encoding / malformed -------------------------------------------------------------

def test_oversize_payload() -> None:
    """A payload one byte over max_payload is oversize; exactly max_payload is accepted."""
    decoder = Decoder(max_payload=512)
    body = _json(GOOD["link"])
    exact = body + b" " * (512 - len(body))
    route, msg, _ = decoder.decode(LINK_T, exact, NOW)
    assert route.kind == "link" and isinstance(msg, LinkSample)
    assert _reason(LINK_T, exact + b" ", decoder=decoder) == OVERSIZE


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/cbor", "application/JSON", "json", "application/msgpack; x=1",
])
def test_unsupported_encoding(content_type: str) -> None:
    """Content types other than JSON and MessagePack are refused."""
    assert _reason(LINK_T, _json(GOOD["link"]), content_type) == UNSUPPORTED_ENCODING


@pytest.mark.parametrize("content_type", [None, "", "application/json"])
def test_json_content_types(content_type: str | None) -> None:
    """No content type, empty, and application/json all mean JSON."""
    _, msg, _ = Decoder().decode(LINK_T, _json(GOOD["link"]), NOW, content_type)
    assert isinstance(msg, LinkSample) and msg.seq == 7


@pytest.mark.parametrize("content_type", [
    "application/msgpack", "application/x-msgpack", "application/vnd.msgpack",
])
def test_msgpack_content_types(content_type: str) -> None:
    """All three MessagePack content types decode MessagePack."""
    _, msg, _ = Decoder().decode(LINK_T, msgspec.msgpack.encode(GOOD["link"]), NOW,
                                 content_type)
    assert isinstance(msg, LinkSample) and msg.rtt_ms == 18.4


@pytest.mark.parametrize(("payload", "content_type"), [
    (_json(GOOD["link"])[:-5], None),
    (b"not json at all", None),
    (b'{"ts": NaN, "seq": 1, "rat": "nr"}', None),
    (b'{"ts": 1700000000, "seq": 1, "rat": "nr", "rtt_ms": Infinity}', None),
    (b"", None),
    (b"", MSGPACK),
    (_json(GOOD["link"]) + b" trailing", None),
    (msgspec.msgpack.encode(GOOD["link"])[:-4], MSGPACK),
    (b"\xc1", MSGPACK),
])
def test_malformed(payload: bytes, content_type: str | None) -> None:
    """Unparseable JSON or MessagePack (truncated, garbage, NaN literal, empty) is malformed."""
    assert _reason(LINK_T, payload, content_type) == MALFORMED


# -- schema / out_of_range / non_finite ----------------------------------------------------------

@pytest.mark.parametrize(("topic", "payload"), [
    (LINK_T, _json(_with("link", ts="now"))),
    (LINK_T, _json(_with("link", seq=1.5))),
    (LINK_T, _json(_with("link", rtt_ms="18"))),
    (LINK_T, _json(_with("link", rat=5))),
    (LINK_T, _json(_with("link", seq=True))),
    (LINK_T, _json(_with("link", seq=_DROP))),
    (LINK_T, _json(_with("link", rat=_DROP))),
    (STATE_T, _json(_with("state", mode=_DROP))),
    (EVENT_T, _json(_with("event", kind=_DROP))),
    (RSU_T, _json(_with("rsu", intersection=_DROP))),
    (LINK_T, _json([GOOD["link"]])),
    (LINK_T, b'"a string"'),
    (LINK_T, b"42"),
    (LINK_T, b"null"),
    (STATE_T, _json(_with("state", v2i_rx=[1, 2]))),
    (LINK_T, _json(_with("link", probe="no"))),
    (LINK_T, _json(_with("link", sender_clock=0))),
])
def test_schema(topic: str, payload: bytes) -> None:
    """Wrong types, missing required fields and non-objects are schema errors."""
    assert _reason(topic, payload) == SCHEMA


@pytest.mark.parametrize(("topic", "payload"), [
    (LINK_T, _json(_with("link", rat="wifi"))),
    (LINK_T, _json(_with("link", seq=-1))),
    (LINK_T, _json(_with("link", seq=2**63))),
    (LINK_T, _json(_with("link", cell_id="c" * 65))),
    (STATE_T, _json(_with("state", lat=91))),
    (STATE_T, _json(_with("state", lon=-180.5))),
    (STATE_T, _json(_with("state", speed_mps=101))),
    (STATE_T, _json(_with("state", mode="flying"))),
    (STATE_T, _json(_with("state", v2i_rx={"r1": -1}))),
    (EVENT_T, _json(_with("event", detail="x" * 4097))),
    (EVENT_T, _json(_with("event", kind=""))),
    (RSU_T, _json(_with("rsu", health="broken"))),
    (RSU_T, _json(_with("rsu", cpu_pct=100.5))),
    (LINK_T, _json(_with("link", ts=-1.0))),
    (LINK_T, msgspec.msgpack.encode(_with("link", seq=-1))),
    (RSU_T, _json(_with("rsu", backhaul_rtt_ms=-1.0))),
    (RSU_T, msgspec.msgpack.encode(_with("rsu", backhaul_rtt_ms=700_000.0))),
    # a figure outside its physical range does not hide another fault of the sample
    (LINK_T, _json(_with("link", rsrp_dbm=-200.0, seq=-1))),
    (LINK_T, _json(_with("link", rtt_ms=0, rat="wifi"))),
])
def test_out_of_range(topic: str, payload: bytes) -> None:
    """Values outside their bounds and unknown enum values are out_of_range (a link sample's
    radio, probe and throughput figures excepted: see the next section)."""
    ct = MSGPACK if not payload.startswith(b"{") else None
    assert _reason(topic, payload, ct) == OUT_OF_RANGE


@pytest.mark.parametrize(("topic", "payload"), [
    (EVENT_T, _json(_with("event", kind="Takeover"))),
    (RSU_T, _json(_with("rsu", intersection="ix a"))),
    (STATE_T, _json(_with("state", v2i_rx={"r 1": 3}))),
], ids=["event_kind", "rsu_intersection", "v2i_rx_key"])
def test_name_pattern_mismatch_is_out_of_range(topic: str, payload: bytes) -> None:
    """A value breaking a name pattern is out_of_range, like any other value constraint."""
    assert _reason(topic, payload) == OUT_OF_RANGE


@pytest.mark.parametrize(("payload", "content_type"), [
    (b'{"ts": 1e999, "seq": 1, "rat": "nr"}', None),
    (b'{"ts": 1700000000, "seq": 1, "rat": "nr", "rtt_ms": 1e999}', None),
    (b'{"ts": 1700000000, "seq": 1, "rat": "nr", "rsrp_dbm": -1e400}', None),
    (msgspec.msgpack.encode(_with("link", rtt_ms=math.nan)), MSGPACK),
    (msgspec.msgpack.encode(_with("link", rtt_ms=math.inf)), MSGPACK),
    (msgspec.msgpack.encode(_with("link", rsrp_dbm=-math.inf)), MSGPACK),
    (msgspec.msgpack.encode(_with("link", rsrp_dbm=math.nan)), MSGPACK),
    (msgspec.msgpack.encode(_with("link", ul_kbps=math.nan, rtt_ms=0.0)), MSGPACK),
    (b'{"ts": 1700000000, "seq": 1, "rat": "nr", "rsrp_dbm": -200, "sinr_db": 1e999}', None),
    (msgspec.msgpack.encode(_with("link", ts=math.nan)), MSGPACK),
    (msgspec.msgpack.encode(_with("state", lat=math.nan)), "application/x-msgpack"),
])
def test_non_finite(payload: bytes, content_type: str | None) -> None:
    """1e999 in JSON and NaN/inf in MessagePack are non_finite, never out_of_range."""
    topic = STATE_T if b"lat" in payload else LINK_T
    assert _reason(topic, payload, content_type) == NON_FINITE


# -- figures outside their physical range: not measured, the sample kept --------------------

def _encoded(data: dict[str, Any], encoding: str) -> tuple[bytes, str | None]:
    return (_json(data), None) if encoding == "json" else (msgspec.msgpack.encode(data), MSGPACK)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(("field", "value", "reason"), [
    ("rsrp_dbm", -200.0, BELOW_RANGE), ("rsrp_dbm", -205, BELOW_RANGE),
    ("rsrp_dbm", -225, BELOW_RANGE), ("rsrp_dbm", -156.5, BELOW_RANGE),
    ("rsrp_dbm", -30.5, ABOVE_RANGE), ("rsrp_dbm", 2147483647, ABOVE_RANGE),
    ("rsrq_db", -43.5, BELOW_RANGE), ("rsrq_db", 20.5, ABOVE_RANGE),
    ("sinr_db", -23.5, BELOW_RANGE), ("sinr_db", 2147483647, ABOVE_RANGE),
    ("ul_kbps", -1.0, BELOW_RANGE), ("dl_kbps", 1e12, ABOVE_RANGE),
])
def test_figure_outside_its_physical_range_is_not_measured(field: str, value: float,
                                                           reason: str, encoding: str) -> None:
    """A marker costs its own figure, nothing else: the hub's fast decoder refuses the sample,
    the full decode accepts it with that field None and says so; every other field stands."""
    payload, content_type = _encoded(_with("link", **{field: value}), encoding)
    if encoding == "json":  # what sends the hub's fast path to Decoder.decode
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(payload, type=LinkSample)
    route, msg, screened = Decoder().decode(LINK_T, payload, NOW, content_type)
    assert route.kind == "link" and isinstance(msg, LinkSample)
    assert screened == (Screened(field, reason),)
    assert getattr(msg, field) is None
    assert msgspec.to_builtins(msg) == _with("link", **{field: _DROP})
    assert msg.probe is True  # a radio or rate marker says nothing about the probe


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(("rtt", "reason"), [
    (0, BELOW_RANGE), (0.0, BELOW_RANGE), (-1, BELOW_RANGE), (-0.1, BELOW_RANGE),
    (60_000.5, ABOVE_RANGE), (70_000, ABOVE_RANGE),
])
def test_rtt_marker_is_no_probe(rtt: float, reason: str, encoding: str) -> None:
    """An RTT of 0, -1 or beyond a minute is a marker, not an answer and not a probe without
    one: rtt None and probe false, even where the sender said probe true."""
    payload, content_type = _encoded(_with("link", rtt_ms=rtt, probe=True), encoding)
    _, msg, screened = Decoder().decode(LINK_T, payload, NOW, content_type)
    assert isinstance(msg, LinkSample)
    assert screened == (Screened("rtt_ms", reason),)
    assert msg.rtt_ms is None and msg.probe is False
    assert (msg.ul_kbps, msg.dl_kbps, msg.rsrp_dbm) == (31250.0, 72000.0, -84.5)


def test_several_markers_in_one_sample_are_each_reported() -> None:
    """Each screened figure is named once, with its own reason."""
    payload = _json(_with("link", rsrp_dbm=-205, rsrq_db=-225, rtt_ms=-1))
    _, msg, screened = Decoder().decode(LINK_T, payload, NOW)
    assert sorted(screened) == [Screened("rsrp_dbm", BELOW_RANGE),
                                Screened("rsrq_db", BELOW_RANGE), Screened("rtt_ms", BELOW_RANGE)]
    assert isinstance(msg, LinkSample)
    assert (msg.rsrp_dbm, msg.rsrq_db, msg.rtt_ms, msg.probe) == (None, None, None, False)
    assert (msg.sinr_db, msg.ul_kbps, msg.cell_id) == (17.0, 31250.0, "c-1")


@pytest.mark.parametrize(("field", "value"), [
    ("rsrp_dbm", -156), ("rsrp_dbm", -31), ("rsrq_db", -43), ("rsrq_db", 20),
    ("sinr_db", -23), ("sinr_db", 40), ("rtt_ms", 0.001), ("rtt_ms", 60_000),
    ("ul_kbps", 0), ("dl_kbps", 0), ("ul_kbps", 100_000_000),
])
def test_physical_range_ends_are_measured(field: str, value: float) -> None:
    """The range ends are measurements (RTT excepted at 0): the hub's fast decoder takes them
    and nothing is screened."""
    payload = _json(_with("link", **{field: value}))
    assert getattr(msgspec.json.decode(payload, type=LinkSample), field) == value
    _, msg, screened = Decoder().decode(LINK_T, payload, NOW)
    assert screened == () and getattr(msg, field) == value


def test_lenient_link_sample_mirrors_the_wire_model() -> None:
    """The slow path's lenient struct has LinkSample's fields, defaults and types, but for
    the screened figures' bounds: nothing else may be read more leniently."""
    strict = {f.name: f for f in msgspec.structs.fields(LinkSample)}
    lenient = {f.name: f for f in msgspec.structs.fields(LenientLinkSample)}
    assert list(lenient) == list(strict)
    assert set(LINK_RANGES) < set(strict)
    for name, field in strict.items():
        assert lenient[name].default == field.default, name
        if name not in LINK_RANGES:
            assert lenient[name].type == field.type, name


# -- timestamps -----------------------------------------------------------------------------------

def test_ts_future() -> None:
    """A ts beyond max_ahead_s is ts_future; just inside the bound is accepted."""
    decoder = Decoder(max_ahead_s=60.0)
    assert _reason(LINK_T, _json(_with("link", ts=NOW + 60.5)), decoder=decoder) == TS_FUTURE
    _, msg, _ = decoder.decode(LINK_T, _json(_with("link", ts=NOW + 59.5)), NOW)
    assert msg.ts == NOW + 59.5


def test_ts_past() -> None:
    """A ts older than max_age_s is ts_past; just inside the bound is accepted."""
    decoder = Decoder(max_age_s=3_600.0)
    assert _reason(EVENT_T, _json(_with("event", ts=NOW - 3_601)), decoder=decoder) == TS_PAST
    _, msg, _ = decoder.decode(EVENT_T, _json(_with("event", ts=NOW - 3_599)), NOW)
    assert isinstance(msg, VehicleEvent)


def test_ts_checked_against_given_now() -> None:
    """The clock bound uses the ``now`` passed in, so replaying old data works."""
    decoder = Decoder()
    payload = _json(_with("link", ts=1_000_000.0))
    assert decoder.decode(LINK_T, payload, 1_000_010.0).message.ts == 1_000_000.0
    assert _reason(LINK_T, payload, decoder=decoder) == TS_PAST


def test_decoder_rejects_bad_limits() -> None:
    """Non-positive decoder limits are a ValueError at construction."""
    for kwargs in ({"max_payload": 0}, {"max_ahead_s": -1.0}, {"max_age_s": 0.0}):
        with pytest.raises(ValueError, match="positive"):
            Decoder(**kwargs)


# -- valid messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["link", "state", "event", "rsu"])
@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_valid_messages_accepted(kind: str, encoding: str) -> None:
    """Each message kind decodes from JSON and MessagePack to the same typed values."""
    data = GOOD[kind]
    if encoding == "json":
        payload, ct = _json(data), None
    else:
        payload, ct = msgspec.msgpack.encode(data), MSGPACK
    route, msg, screened = Decoder().decode(TOPICS[kind], payload, NOW, ct)
    assert route.kind == kind
    assert route.site == "s1"
    assert route.source == ("r1" if kind == "rsu" else "v1")
    assert route.link == ("l5g" if kind == "link" else None)
    assert type(msg) is TYPES[kind]
    assert msgspec.to_builtins(msg) == data
    assert screened == ()


def test_optional_fields_default() -> None:
    """Minimal messages get None / default values for optional fields."""
    decoder = Decoder()
    _, link, _ = decoder.decode(LINK_T, b'{"ts": 1700000000, "seq": 0, "rat": "none"}', NOW)
    assert isinstance(link, LinkSample)
    assert (link.rtt_ms, link.cell_id, link.rsrp_dbm, link.rat) == (None, None, None, "none")
    assert link.probe is True and link.sender_clock is True  # what v1 samples always meant
    _, rsu, _ = decoder.decode(RSU_T, b'{"ts": 1700000000, "seq": 0, "intersection": "i"}',
                               NOW)
    assert isinstance(rsu, RsuStatus) and rsu.health == "ok" and rsu.tx_msgs is None
    _, ev, _ = decoder.decode(EVENT_T, b'{"ts": 1700000000, "kind": "door_open"}', NOW)
    assert isinstance(ev, VehicleEvent) and ev.seq is None


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_unknown_fields_ignored(encoding: str) -> None:
    """Fields a newer sender adds are ignored, whatever their shape."""
    data = {**GOOD["link"], "band": "n79", "extra": {"nested": [1, 2, {"x": None}]},
            "flag": True, "ratio": 0.5}
    payload = _json(data) if encoding == "json" else msgspec.msgpack.encode(data)
    _, msg, _ = Decoder().decode(LINK_T, payload, NOW, None if encoding == "json" else MSGPACK)
    assert isinstance(msg, LinkSample)
    assert msgspec.to_builtins(msg) == GOOD["link"]


# -- MessagePack that is bad after a range error ---------------------------------------------------

_OUT_OF_RANGE_FIRST = msgspec.msgpack.encode({"rsrp_dbm": 10.0, "ts": NOW, "seq": 1, "rat": "nr"})
_BAD_AFTER_RANGE = [
    _OUT_OF_RANGE_FIRST[:-3],  # truncated after the bad value
    _OUT_OF_RANGE_FIRST + b"\x00",  # trailing byte
    # an invalid timestamp ext, which the NaN check's untyped decode trips on (a screened
    # figure would not do: msgspec skips an unknown field's ext, so that sample is accepted)
    msgspec.msgpack.encode({"seq": -1, "ts": NOW, "rat": "nr",
                            "x": msgspec.msgpack.Ext(-1, b"abc")}),
]


@pytest.mark.parametrize("payload", _BAD_AFTER_RANGE,
                         ids=["truncated", "trailing_byte", "bad_timestamp_ext"])
def test_msgpack_malformed_after_range_error_is_rejected(payload: bytes) -> None:
    """Out-of-range then truncated/garbage MessagePack is refused, not raised."""
    assert _reason(LINK_T, payload, MSGPACK) in (MALFORMED, OUT_OF_RANGE)


def test_hub_survives_msgpack_malformed_after_range_error() -> None:
    """The hub quarantines the bad MessagePack and still folds in the rest of the batch."""
    hub = Hub(store=open_journal(":memory:"))
    good = _json(GOOD["link"])
    hub.ingest([(LINK_T, _BAD_AFTER_RANGE[0], MSGPACK), (LINK_T, good, None)], NOW)
    assert hub.received == 2
    assert hub.accepted == 1
    assert hub.quarantine.total == 1


# -- fuzzing ---------------------------------------------------------------------------------------

FIELD_NAMES = sorted({k for d in GOOD.values() for k in d})
VALID_TOPICS = [LINK_T, STATE_T, EVENT_T, RSU_T, link_topic("s1", "v1", "lte"),
                state_topic("s2", "v2"), link_topic("s2", "v2", "l5g")]
BAD_TOPICS = ["l4mon/v1/s1/vehicle/+/state", "l4mon/v1/s1/vehicle/#", "l4mon/v2/s/rsu/r/status",
              "l4mon/v1/s1/vehicle/v 1/state", "l4mon/v1/s1/vehicle/v1/link/a/b"]

_scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -1e308, 1e-320, NOW, NOW + 1e6, NOW - 1e6])
    | st.text(max_size=20)
    | st.sampled_from(["nr", "none", "wifi", "autonomous", "flying", "ok", "fault", "door_open",
                       "ix-a", ""])
)
#: Values at or beyond the wire model's bounds, so fuzzing reaches the range and clock checks.
_edges = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -200.0, 91.0, 700_000.0, 2**63,
                          -(2**63), NOW + 7_200.0, NOW - 100_000.0, "x" * 65, "Bad Name"])
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
_objects = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=8), _values, max_size=10,
)


@st.composite
def _near_valid(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A real message with a few fields replaced, dropped or added: reaches deep validation."""
    data = dict(GOOD[kind])
    data["ts"] = NOW - draw(st.floats(min_value=-1.0, max_value=5.0))
    if "seq" in data:
        data["seq"] = draw(st.integers(min_value=0, max_value=20))
    keys = st.sampled_from(sorted(data)) | st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
    for key in draw(st.lists(keys, max_size=2)):
        if draw(st.booleans()) and key in data:
            del data[key]
        else:
            data[key] = draw(_edges | _values)
    return data


@st.composite
def _delivery(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """One (topic, payload, content type): mostly real topics, every kind of payload."""
    if draw(st.integers(min_value=0, max_value=3)):
        topic = draw(st.sampled_from(VALID_TOPICS))
    else:
        topic = draw(st.sampled_from(BAD_TOPICS) | st.text(max_size=40))
    content_type = draw(st.sampled_from(
        [None, None, None, "", "application/json", MSGPACK, "application/x-msgpack", "text/plain"]
    ))
    how = draw(st.sampled_from(["bytes", "object", "near", "near", "value"]))
    if how == "bytes":
        return topic, draw(st.binary(max_size=200)), content_type
    if how == "near":
        route = parse_topic(topic)
        value: Any = draw(_near_valid(route.kind if route else "link"))
    else:
        value = draw(_objects if how == "object" else _values)
    if content_type in (MSGPACK, "application/x-msgpack"):
        try:
            payload = msgspec.msgpack.encode(value)
        except (OverflowError, msgspec.EncodeError):  # ints beyond 64 bits: send JSON instead
            payload, content_type = _json(value), None
    else:
        payload = _json(value)
    return topic, payload, content_type


@settings(max_examples=300, deadline=None)
@given(_delivery())
@example((LINK_T, _json(GOOD["link"]), None))
@example((STATE_T, msgspec.msgpack.encode(_with("state", lat=math.nan)), MSGPACK))
def test_fuzz_decoder_only_raises_rejected(delivery: tuple[str, bytes, str | None]) -> None:
    """Whatever arrives, decode returns a typed message or raises Rejected with a known reason."""
    topic, payload, content_type = delivery
    try:
        route, msg, _ = Decoder().decode(topic, payload, NOW, content_type)
    except Rejected as refused:
        assert refused.reason in REASONS
        return
    assert type(msg) is TYPES[route.kind]
    assert NOW - 86_400.0 <= msg.ts <= NOW + 3_600.0
    for value in msgspec.to_builtins(msg).values():
        assert not (isinstance(value, float) and not math.isfinite(value))


@settings(max_examples=100, deadline=None)
@given(st.lists(_delivery(), min_size=1, max_size=30))
@example([(LINK_T, _json(GOOD["link"]), None), (LINK_T, _json(GOOD["link"]), None),
          (LINK_T, b"{", None), ("x", b"", None)])
def test_fuzz_hub_accounts_for_every_message(batch: list[tuple[str, bytes, str | None]]) -> None:
    """Through Hub.ingest every message is exactly one of accepted, duplicate or quarantined."""
    hub = Hub(store=open_journal(":memory:"))
    hub.ingest(batch, NOW)
    n = len(batch)
    assert hub.received == n
    assert hub.accepted + hub.duplicates + hub.quarantine.total == n
    assert set(hub.quarantine.counts) <= {*REASONS, "capacity", "site_conflict"}
    assert hub.batches == 1
