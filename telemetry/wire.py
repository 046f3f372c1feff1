"""The l4mon wire model, version 1 (see docs/protocol.md).

Every numeric field is bounded, so ``inf`` and ``NaN`` can never reach the statistics: msgspec
rejects them while decoding. A link sample's radio, probe and throughput figures are bounded by
their physical ranges (telemetry/ranges.py): the decoder then screens such a figure out rather
than refusing the sample (telemetry/decode.py). Unknown fields are ignored so that senders may
add fields without breaking older hubs; existing fields never change meaning.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import msgspec

from telemetry.ranges import KBPS, RSRP_DBM, RSRQ_DB, RTT_MS, SINR_DB

PROTOCOL_VERSION = "v1"

#: Sender clock, epoch seconds. The bounds only reject absurd values; plausibility against the
#: hub's clock is checked separately because it depends on the clock the hub was given.
EpochSeconds = Annotated[float, msgspec.Meta(ge=0.0, le=4_102_444_800.0)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

Mode = Literal["autonomous", "mrm", "remote", "manual", "stopped"]
Rat = Literal["nr", "lte", "umts", "gsm", "none"]
RsuHealth = Literal["ok", "degraded", "fault"]
#: Weather as drive logs tag it and a roadside weather sensor reports it.
Weather = Literal["clear", "cloudy", "rain", "snow", "fog", "unknown"]

Rsrp = Annotated[float, msgspec.Meta(ge=RSRP_DBM.low, le=RSRP_DBM.high)]
Rsrq = Annotated[float, msgspec.Meta(ge=RSRQ_DB.low, le=RSRQ_DB.high)]
Sinr = Annotated[float, msgspec.Meta(ge=SINR_DB.low, le=SINR_DB.high)]
RttMs = Annotated[float, msgspec.Meta(gt=RTT_MS.low, le=RTT_MS.high)]
Kbps = Annotated[float, msgspec.Meta(ge=KBPS.low, le=KBPS.high)]
#: Any finite float: what a link sample's figures are first read as when they fail their
#: physical range, so that one marker costs that figure only (``LenientLinkSample``).
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
#: An RSU's backhaul round trip: refused, not screened, outside these (as it always was).
BackhaulRttMs = Annotated[float, msgspec.Meta(ge=0.0, le=600_000.0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
#: A sender's nominal interval between two messages of one stream, seconds (v1 addition).
Interval = Annotated[float, msgspec.Meta(gt=0.0, le=3_600.0)]


class VehicleState(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """``l4mon/v1/{site}/vehicle/{vehicle}/state``: pose and driving mode, ~10 Hz, QoS 0."""

    ts: EpochSeconds
    seq: Seq
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
    speed_mps: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
    heading_deg: Annotated[float, msgspec.Meta(ge=0.0, le=360.0)]
    mode: Mode
    #: Cumulative V2I messages received per RSU id since the vehicle booted (optional).
    v2i_rx: dict[Name, Count] | None = None
    #: The sender's nominal interval between state messages (v1 addition, optional): the hub
    #: judges the stream's silence by it until it has learned the pace from the messages.
    interval_s: Interval | None = None


class LinkSample(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """``l4mon/v1/{site}/vehicle/{vehicle}/link/{link}``: one modem's radio and probe, ~10 Hz."""

    ts: EpochSeconds
    seq: Seq
    rat: Rat
    cell_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    rsrp_dbm: Rsrp | None = None
    rsrq_db: Rsrq | None = None
    sinr_db: Sinr | None = None
    #: The vehicle's own round-trip probe; ``None`` when the probe got no answer in time, or
    #: when ``probe`` is false.
    rtt_ms: RttMs | None = None
    #: Throughput the modem measured over the last interval; ``None``: not measured (never 0).
    ul_kbps: Kbps | None = None
    dl_kbps: Kbps | None = None
    #: What a missing ``rtt_ms`` means (v1 addition). False: no probe concluded in this
    #: interval, so it is no evidence of anything. True (the default, and the meaning before
    #: the field existed): a probe without an answer. A present ``rtt_ms`` is an answered
    #: probe whatever this says.
    probe: bool = True
    #: Whether ``ts`` is the sender's own synchronised clock (v1 addition). False: it is not
    #: (an import whose one clock stamped both ends, a sender without NTP/PTP/GNSS time), so the
    #: hub derives no one-way delay from it and does not judge the clock's offset.
    sender_clock: bool = True
    #: The sender's nominal interval between this link's samples (v1 addition, optional):
    #: staleness is judged by it until the hub has learned the link's pace (or by it when it
    #: is slower than the pace learned). Importers declare what the file shows.
    interval_s: Interval | None = None


class LenientLinkSample(msgspec.Struct, frozen=True, gc=False):
    """``LinkSample`` with its screened figures bounded only to finite values: what the
    decoder reads a link sample with when it fails validation, so that the figures outside
    their physical range can be set to None and the rest kept (telemetry/ranges.py). Every
    other field is exactly ``LinkSample``'s (tests/test_decode.py holds them to it)."""

    ts: EpochSeconds
    seq: Seq
    rat: Rat
    cell_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    rsrp_dbm: Finite | None = None
    rsrq_db: Finite | None = None
    sinr_db: Finite | None = None
    rtt_ms: Finite | None = None
    ul_kbps: Finite | None = None
    dl_kbps: Finite | None = None
    probe: bool = True
    sender_clock: bool = True
    interval_s: Interval | None = None


class VehicleEvent(msgspec.Struct, frozen=True, gc=False):
    """``l4mon/v1/{site}/vehicle/{vehicle}/event``: discrete happenings, QoS 1.

    ``seq`` is optional for old senders, but without it a QoS 1 redelivery cannot be told from
    a second event of the same kind.
    """

    ts: EpochSeconds
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    seq: Seq | None = None
    detail: Annotated[str, msgspec.Meta(max_length=4096)] | None = None


class RsuStatus(msgspec.Struct, frozen=True, gc=False):
    """``l4mon/v1/{site}/rsu/{rsu}/status``: roadside unit health and V2I counters, 1-10 Hz.

    ``tx_msgs`` counts V2I messages the RSU broadcast since ``boot_id`` started; with the
    vehicles' ``v2i_rx`` counters it gives the delivery ratio over any window.
    """

    ts: EpochSeconds
    seq: Seq
    intersection: Name
    health: RsuHealth = "ok"
    boot_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    tx_msgs: Count | None = None
    rx_msgs: Count | None = None
    backhaul_rtt_ms: BackhaulRttMs | None = None
    cpu_pct: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] | None = None
    #: What a road weather sensor at the RSU observes now (optional): the link map's
    #: look-ahead picks the map's rows for this weather (docs/linkmap.md).
    weather: Weather | None = None


#: A vehicle's service: it says when it enters and leaves it; ``offline`` is the MQTT last
#: will the broker publishes for a vehicle whose connection dropped without a word.
Service = Literal["in_service", "out_of_service", "offline"]


class ServiceStatus(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """``l4mon/v1/{site}/vehicle/{vehicle}/service``: whether the vehicle is in service, QoS 1,
    retained (v1 addition).

    A state, not an event: the newest one is the vehicle's status, so a retained copy or a
    redelivery changes nothing, and a hub that starts late learns it from the broker. A
    vehicle out of service is expected to be silent: nothing is raised for it. ``offline``
    (the vehicle's MQTT last will) says its connection dropped without a word; it does not
    end the service (silence in service is a takeover), it is journaled as the cause.
    """

    #: When the status was set, by the sender's clock. A will's ``ts`` is when the vehicle
    #: connected (its payload is fixed then), so the hub takes its own receive time.
    ts: EpochSeconds
    status: Service
    #: Why, for the operator and the journal ("end of shift", "depot", "charging").
    reason: Annotated[str, msgspec.Meta(max_length=256)] | None = None


Message = VehicleState | LinkSample | VehicleEvent | RsuStatus | ServiceStatus
