"""A deterministic simulated fleet: shuttles driving a site's loop, as protocol v1 messages.

The caller owns time: ``advance(now)`` returns every message due since the previous call, so
the same fleet runs in the hub's event loop on a live clock, or in a test or benchmark on a
virtual one. Each vehicle and RSU ticks on its own fixed grid (``start + phase + n / rate``)
with its own seeded RNG, and ticks run in global time order; so the bytes depend only on the
seed, the faults injected and the times asked for, not on how calls split the timeline.

Radio figures are deliberately rough, order-of-magnitude calibrations, not a channel model:

* Local 5G RTT: median ~18-20 ms, p90 ~23-30 ms, rare spikes to ~300 ms, from the private n8
  runs of Zhang et al., *5G communication delay dataset for cloud-based vehicle planning and
  control*, Zenodo 10.5281/zenodo.17475688 (2024 drives); Japanese MIC local 5G trials report
  tens of Mbit/s uplink at sub-6, in line with the 20-60 Mbit/s used here.
* Public LTE: RSRQ around -8..-12 dB and SNR around 3..9 dB median while driving, from Raca et
  al., *Beyond Throughput, The Next Generation: A 5G Dataset with Channel and Context Metrics*,
  ACM MMSys 2020 (LTE rows); RTT 40-60 ms is the usual crowd-sourced figure for 4G in Japan.
* Path loss: log-distance with exponent 3-3.5; shadow fading 4-6 dB, decorrelating over tens of
  metres (Gudmundson's model; magnitudes in line with 3GPP TR 38.901 UMi/RMa).
* Handover: a few tens of ms of interruption (3GPP's LTE target is ~30-60 ms in practice), seen
  at 10 Hz as one lost probe and a slow one right after.

Weather and time of day come from a ``ConditionModel`` (scenarios/conditions.py, where their
sources are): antenna loss, extra shadowing, snow fades, cell load and RTT per link, and the
speed profile. The default, ``CLEAR_DAYLIGHT``, is this calibration unchanged.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

import msgspec

from l4mon.site import LocalFrame, Route, Site
from scenarios.conditions import CLEAR_DAYLIGHT, ConditionModel, LinkConditions
from telemetry import topics
from telemetry.wire import LinkSample, Mode, RsuStatus, VehicleEvent, VehicleState

__all__ = ["FAULT_DEFAULTS", "Fault", "FaultKind", "LinkName", "SimFleet"]

FaultKind = Literal[
    "link_down",
    "both_links_down",
    "telemetry_stall",
    "rtt_spike",
    "bandwidth_cap",
    "takeover_request",
    "clock_skew",
]
LinkName = Literal["l5g", "lte"]
LINKS: Final[tuple[LinkName, ...]] = ("l5g", "lte")

#: ``Fault.value`` when none is given: extra ms, cap in kbps, skew in seconds.
FAULT_DEFAULTS: Final[dict[str, float]] = {
    "rtt_spike": 250.0,
    "bandwidth_cap": 500.0,
    "clock_skew": 5.0,
}
_LINK_OPTIONAL: Final = frozenset({"rtt_spike", "bandwidth_cap"})


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """Something going wrong for one vehicle during ``[start, start + duration)`` (sim time).

    ``link`` is required for ``link_down``, optional for ``rtt_spike`` and ``bandwidth_cap``
    (``None``: both links) and not allowed otherwise. ``value`` is the size of ``rtt_spike``
    (ms added), ``bandwidth_cap`` (ul kbps) and ``clock_skew`` (seconds added to ``ts``);
    ``FAULT_DEFAULTS`` applies when it is ``None``. A msgspec Struct so that scenario files
    can be validated into it with ``msgspec.convert``.
    """

    kind: FaultKind
    vehicle: str
    start: float
    duration: float
    link: LinkName | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if not (math.isfinite(self.start) and math.isfinite(self.duration) and self.duration > 0):
            raise ValueError("a fault needs a finite start and a positive duration")
        if self.link is not None and self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, not {self.link!r}")
        if self.kind == "link_down" and self.link is None:
            raise ValueError("link_down needs link ('l5g' or 'lte')")
        if self.link is not None and self.kind != "link_down" and self.kind not in _LINK_OPTIONAL:
            raise ValueError(f"{self.kind} applies to the whole vehicle; do not give a link")
        if self.value is not None:
            if self.kind not in FAULT_DEFAULTS:
                raise ValueError(f"{self.kind} takes no value")
            if not math.isfinite(self.value) or (self.kind != "clock_skew" and self.value < 0):
                raise ValueError(f"bad value {self.value!r} for {self.kind}")

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def amount(self) -> float:
        """``value``, or its default for this kind (0 for kinds without one)."""
        return self.value if self.value is not None else FAULT_DEFAULTS.get(self.kind, 0.0)


@dataclass(frozen=True, slots=True)
class _Radio:
    """One link's radio behaviour; see the module docstring for where the numbers come from."""

    rat: Literal["nr", "lte"]
    ref_rsrp_dbm: float  # mean RSRP at ref_m from a cell
    ref_m: float
    exponent: float  # log-distance path-loss exponent
    shadow_db: float  # shadow-fading standard deviation
    decorr_m: float  # shadow-fading decorrelation distance
    noise_dbm: float  # thermal noise + noise figure per resource element
    background_dbm: float  # interference from cells the site file does not list
    load: float  # share of resources busy in neighbour cells (interference, RSRQ)
    hysteresis_db: float  # A3-style handover offset ...
    ttt_s: float  # ... that must hold this long (time-to-trigger)
    rtt_median_ms: float
    rtt_sigma: float  # log-normal spread of RTT
    rtt_good_rsrp: float  # below this RSRP, RTT grows (retransmissions, lower MCS)
    spike_prob: float  # per-sample chance of a scheduling / retransmission spike
    ul_budget_db: float  # uplink SNR ~ RSRP + this: the UE's power limit at the cell edge
    full_snr_db: float  # SNR at which throughput reaches its maximum
    ul_max_kbps: float
    dl_max_kbps: float
    # Derived once, used per sample.
    floor_mw: float = field(init=False)  # noise + background interference, mW per RE
    full: float = field(init=False)  # spectral efficiency at full_snr_db
    rsrq_top_db: float = field(init=False)  # RSRQ at high SINR for this load

    def __post_init__(self) -> None:
        floor = 10.0 ** (self.noise_dbm / 10.0) + 10.0 ** (self.background_dbm / 10.0)
        object.__setattr__(self, "floor_mw", floor)
        object.__setattr__(self, "full", math.log2(1.0 + 10.0 ** (self.full_snr_db / 10.0)))
        object.__setattr__(self, "rsrq_top_db", -10.0 * math.log10(12.0 * self.load))


def _dbm_per_re(bandwidth_hz: float, noise_figure_db: float) -> float:
    return -174.0 + 10.0 * math.log10(bandwidth_hz) + noise_figure_db


_RADIO: Final[dict[LinkName, _Radio]] = {
    # Small cells, 100 MHz TDD on n79, few users: high SINR near the pole, UL-capable TDD pattern.
    "l5g": _Radio(
        rat="nr",
        ref_rsrp_dbm=-72.0,
        ref_m=100.0,
        exponent=3.0,
        shadow_db=4.0,
        decorr_m=20.0,
        noise_dbm=_dbm_per_re(30e3, 7.0),
        background_dbm=-118.0,
        load=0.4,
        hysteresis_db=3.0,
        ttt_s=0.32,
        rtt_median_ms=18.0,
        rtt_sigma=0.15,
        rtt_good_rsrp=-95.0,
        spike_prob=0.008,
        ul_budget_db=113.0,
        full_snr_db=25.0,
        ul_max_kbps=60_000.0,
        dl_max_kbps=120_000.0,
    ),
    # Rural macro cells 1-2 km away, shared with the public: lower SINR, longer core path.
    "lte": _Radio(
        rat="lte",
        ref_rsrp_dbm=-84.0,
        ref_m=1000.0,
        exponent=3.5,
        shadow_db=6.0,
        decorr_m=50.0,
        noise_dbm=_dbm_per_re(15e3, 7.0),
        background_dbm=-106.0,
        load=0.6,
        hysteresis_db=3.0,
        ttt_s=0.48,
        rtt_median_ms=48.0,
        rtt_sigma=0.25,
        rtt_good_rsrp=-105.0,
        spike_prob=0.01,
        ul_budget_db=117.0,
        full_snr_db=20.0,
        ul_max_kbps=20_000.0,
        dl_max_kbps=40_000.0,
    ),
}

_SINR_CEILING: Final = 10.0 ** (-33.0 / 10.0)  # impairments cap SINR near 33 dB
_MAX_LOAD: Final = 0.95  # a condition's load_factor never fills the neighbours completely


def _with_conditions(radio: _Radio, cond: LinkConditions) -> _Radio:
    """``radio`` as changed by ``cond`` (the same object when ``cond`` changes nothing).

    Antenna loss lowers every received signal, background interference included, and with
    RSRP the uplink's power limit; load scales neighbour and background interference, and the
    shuttle's share of the cell, ``1 - load``, scales its throughput.
    """
    if cond == LinkConditions():
        return radio
    load = min(_MAX_LOAD, radio.load * cond.load_factor)
    share = (1.0 - load) / (1.0 - radio.load)
    return dataclasses.replace(
        radio,
        ref_rsrp_dbm=radio.ref_rsrp_dbm - cond.extra_path_loss_db,
        background_dbm=radio.background_dbm - cond.extra_path_loss_db
        + 10.0 * math.log10(load / radio.load),
        shadow_db=math.hypot(radio.shadow_db, cond.extra_shadow_db),
        load=load,
        rtt_median_ms=radio.rtt_median_ms * cond.rtt_factor,
        ul_max_kbps=radio.ul_max_kbps * share,
        dl_max_kbps=radio.dl_max_kbps * share,
    )


# Driving. Rural L4 shuttles run at ~20 km/h (Eiheiji's Level 4 section is slower, ~12 km/h).
_CRUISE_MPS: Final = (5.8, 7.4)  # per-vehicle cruise speed range
_JUNCTION_MPS: Final = 3.0  # inside an intersection
_ACCEL: Final = 0.8  # m/s², comfortable for standing passengers
_BRAKE: Final = 1.0  # m/s², planned slowing before junctions
_PLAN_BRAKE: Final = 0.7  # m/s², the slope of the speed-limit profile ahead of junctions
_HARD_BRAKE: Final = 2.5  # m/s², following distance and the minimal risk manoeuvre
_HEADWAY_S: Final = 1.5
_MIN_GAP_M: Final = 12.0
_LIMIT_STEP_M: Final = 1.0  # resolution of the precomputed speed-limit profile

# V2I: ITS Connect style RSUs broadcast every 100 ms and reach ~300 m.
V2I_RATE_HZ: Final = 10.0
V2I_RANGE_M: Final = 300.0

_EVENT_DETAIL: Final[dict[str, str]] = {
    "takeover_request": "system asked a remote operator to take over (simulated fault)",
    "mrm_started": "minimal risk manoeuvre: controlled stop in lane",
    "mrm_finished": "minimal risk manoeuvre ended; autonomous driving resumed",
}


class _Track:
    """A route loop in site metres, with a speed-limit profile that brakes before junctions."""

    def __init__(self, route: Route, frame: LocalFrame, site: Site, speed: float = 1.0) -> None:
        pts: list[tuple[float, float]] = []
        for lat, lon in route.waypoints:
            p = frame.to_xy(lat, lon)
            if not pts or p != pts[-1]:
                pts.append(p)
        if len(pts) > 2 and pts[-1] == pts[0]:
            pts.pop()
        n = len(pts)
        self.x0 = [p[0] for p in pts]
        self.y0 = [p[1] for p in pts]
        self.ux: list[float] = []
        self.uy: list[float] = []
        self.heading: list[float] = []
        self.cum = [0.0]
        for i in range(n):
            (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
            d = math.hypot(xb - xa, yb - ya)
            self.ux.append((xb - xa) / d)
            self.uy.append((yb - ya) / d)
            self.heading.append(round(math.degrees(math.atan2(xb - xa, yb - ya)) % 360.0, 1))
            self.cum.append(self.cum[-1] + d)
        self.length = self.cum[-1]
        # Speed limit every metre: junction speed inside intersections, and a braking ramp
        # before them (two backward passes so the ramp wraps around the loop's start). The
        # ramp is gentler than the brakes so that tracking it one tick late still arrives slow.
        steps = int(self.length / _LIMIT_STEP_M) + 1
        limit = []
        seg = 0
        for k in range(steps):
            x, y, seg = self.position(k * _LIMIT_STEP_M, seg)
            inside = site.intersection_at(*frame.to_latlon(x, y)) is not None
            limit.append((_JUNCTION_MPS if inside else _CRUISE_MPS[1]) * speed)
        for k in range(2 * steps - 1, -1, -1):
            i, j = k % steps, (k + 1) % steps
            ramp = math.sqrt(limit[j] ** 2 + 2.0 * _PLAN_BRAKE * _LIMIT_STEP_M)
            limit[i] = min(limit[i], ramp)
        self.limit = limit

    def position(self, s: float, seg: int) -> tuple[float, float, int]:
        """Point at arc length ``s`` (``0 <= s < length``), searching forward from ``seg``."""
        cum = self.cum
        if s < cum[seg]:
            seg = 0
        while s >= cum[seg + 1] and seg < len(self.ux) - 1:
            seg += 1
        d = s - cum[seg]
        return self.x0[seg] + self.ux[seg] * d, self.y0[seg] + self.uy[seg] * d, seg


class _Link:
    """One modem's state: serving cell (index into the link's cells, -1 detached) and fading."""

    __slots__ = (
        "after_ho", "fade_db", "fade_end", "fade_next", "fade_rng", "name", "pending", "seq",
        "serving", "shadow", "topic", "ttt",
    )  # fmt: skip

    def __init__(self, name: LinkName, topic: str) -> None:
        self.name = name
        self.topic = topic
        self.seq = 0
        self.serving = -1
        self.pending = -1  # the better neighbour being timed for handover
        self.ttt = 0  # ticks the pending neighbour has been better
        self.shadow = 0.0
        self.after_ho = 0  # ticks left in the handover interruption
        # Condition fades (only with a ConditionModel that has them): their own RNG, so the
        # rest of the sample is the same draw with or without them.
        self.fade_rng: random.Random | None = None
        self.fade_next = math.inf  # start of the next fade, sim time
        self.fade_end = -math.inf  # end of the current (or last) fade
        self.fade_db = 0.0


class _Vehicle:
    __slots__ = (
        "ahead", "cruise", "event_topic", "faults", "id", "index", "jitter", "links", "mode",
        "outbox", "phase", "rng", "s", "seg", "seq_event", "seq_state", "speed", "state_topic",
        "tick", "track", "v2i",
    )  # fmt: skip

    def __init__(self, index: int, vid: str, rng: random.Random, track: _Track) -> None:
        self.index = index
        self.id = vid
        self.rng = rng
        self.phase = 0.0
        self.tick = 0
        self.track = track
        self.s = 0.0
        self.seg = 0
        self.speed = 0.0
        self.cruise = rng.uniform(*_CRUISE_MPS)
        self.jitter = 0.0
        self.ahead: _Vehicle | None = None
        self.mode: Mode = "autonomous"
        self.state_topic = ""
        self.event_topic = ""
        self.links: list[_Link] = []
        self.seq_state = 0
        self.seq_event = 0
        self.faults: list[Fault] = []
        self.outbox: list[VehicleEvent] = []
        self.v2i: dict[str, int] = {}


class _Rsu:
    __slots__ = (
        "boot", "boot_id", "cpu", "id", "intersection", "phase", "rng", "seq", "tick", "topic",
        "x", "y",
    )  # fmt: skip

    def __init__(self, rsu_id: str, intersection: str, topic: str, rng: random.Random) -> None:
        self.id = rsu_id
        self.intersection = intersection
        self.topic = topic
        self.rng = rng
        self.phase = 0.0
        self.tick = 0
        self.x = self.y = 0.0
        self.boot = 0.0
        self.boot_id = ""
        self.seq = 0
        self.cpu = 20.0


@dataclass(slots=True)
class _Effects:
    """What the faults active at one tick do to a vehicle; per-link lists follow ``LINKS``."""

    down: list[bool] = field(default_factory=lambda: [False, False])
    rtt_add: list[float] = field(default_factory=lambda: [0.0, 0.0])
    ul_cap: list[float] = field(default_factory=lambda: [math.inf, math.inf])
    stalled: bool = False
    cut: bool = False  # both links down: nothing can leave the vehicle
    mrm: bool = False
    skew: float = 0.0


_CLEAR: Final = _Effects()  # the common case: no fault active (never mutated)


def _effects(faults: list[Fault], t: float) -> _Effects:
    fx = _Effects()
    for f in faults:
        if not f.start <= t < f.end:
            continue
        kind = f.kind
        if kind == "link_down":
            fx.down[LINKS.index(f.link or "l5g")] = True
        elif kind == "both_links_down":
            fx.down = [True, True]
            fx.cut = True
        elif kind == "telemetry_stall":
            fx.stalled = True
        elif kind == "takeover_request":
            fx.mrm = True
        elif kind == "clock_skew":
            fx.skew += f.amount
        else:
            for k, name in enumerate(LINKS):
                if f.link is None or f.link == name:
                    if kind == "rtt_spike":
                        fx.rtt_add[k] += f.amount
                    else:
                        fx.ul_cap[k] = min(fx.ul_cap[k], f.amount)
    return fx


_VEHICLE: Final = 0
_RSU: Final = 1


class SimFleet:
    """Simulated shuttles and RSUs of one site, producing protocol v1 topics and JSON payloads.

    Vehicles are spread evenly over the site's routes and along each loop, keep a following
    distance, and slow down in intersections. Each vehicle ticks at ``rate_hz`` and then sends
    its state and both link samples with the same ``ts``; each RSU ticks at ``rsu_rate_hz``
    (0 disables RSU status). Nothing is sent at ``start`` itself: the first tick of each
    source falls within its first period after ``start``.
    """

    def __init__(
        self,
        *,
        site: Site,
        vehicles: int = 4,
        rate_hz: float = 10.0,
        rsu_rate_hz: float = 1.0,
        seed: int = 0,
        start: float,
        conditions: ConditionModel = CLEAR_DAYLIGHT,
    ) -> None:
        if vehicles < 0:
            raise ValueError("vehicles must be >= 0")
        if not (0.0 < rate_hz <= 1000.0):
            raise ValueError("rate_hz must be in (0, 1000]")
        if not (0.0 <= rsu_rate_hz <= 1000.0):
            raise ValueError("rsu_rate_hz must be in [0, 1000]")
        if not (0.0 <= start <= 4_000_000_000.0):
            raise ValueError("start must be epoch seconds")
        if vehicles and not site.routes:
            raise ValueError(f"site {site.name!r} has no route to drive")
        self.site = site
        #: The weather and light simulated; ``conditions.conditions`` is the drive-log tag.
        self.conditions = conditions
        self._radio = {
            link: _with_conditions(_RADIO[link], getattr(conditions, link)) for link in LINKS
        }
        self._start = start
        self._now = start
        self._period = 1.0 / rate_hz
        self._rsu_period = 1.0 / rsu_rate_hz if rsu_rate_hz else 0.0
        self._encode = msgspec.json.Encoder().encode
        frame = site.frame()
        self._frame = frame
        # Cells per link, as (id, x, y, co-channel neighbour indices); cells without a position
        # cannot be simulated and are skipped.
        self._cells: dict[LinkName, list[tuple[str, float, float, tuple[int, ...]]]] = {}
        for link in LINKS:
            radio = _RADIO[link]
            usable = [
                c
                for c in site.cells
                if c.rat == radio.rat
                and c.lat is not None
                and c.lon is not None
                and c.operator != ("public" if link == "l5g" else "local5g")
            ]
            rows = []
            for i, c in enumerate(usable):
                assert c.lat is not None and c.lon is not None
                x, y = frame.to_xy(c.lat, c.lon)
                co = tuple(j for j, o in enumerate(usable) if j != i and o.band == c.band)
                rows.append((c.id, x, y, co))
            self._cells[link] = rows
        self._rsus: list[_Rsu] = []
        for r in site.rsus:
            rsu = _Rsu(
                r.id,
                r.intersection,
                topics.rsu_topic(site.name, r.id),
                random.Random(f"l4mon-sim:{seed}:rsu:{r.id}"),
            )
            rsu.x, rsu.y = frame.to_xy(r.lat, r.lon)
            # Up since some time in the last month; the boot id is what resets its counters.
            rsu.boot = start - rsu.rng.uniform(3_600.0, 30 * 86_400.0)
            rsu.boot_id = f"{r.id}-{rsu.rng.getrandbits(32):08x}"
            rsu.phase = self._rsu_period * (1.0 - rsu.rng.random())
            self._rsus.append(rsu)
        #: Cells that go dark: (cell id, start, end); see ``cell_outage``.
        self._outages: list[tuple[str, float, float]] = []
        self._vehicles: list[_Vehicle] = []
        self.vehicle_ids: list[str] = []
        self.rsu_ids: list[str] = [r.id for r in site.rsus]
        self._build_vehicles(vehicles, seed)
        self._heap: list[tuple[float, int, int]] = [
            (start + v.phase, _VEHICLE, v.index) for v in self._vehicles
        ]
        if self._rsu_period:
            self._heap += [(start + r.phase, _RSU, i) for i, r in enumerate(self._rsus)]
        heapq.heapify(self._heap)

    def _build_vehicles(self, count: int, seed: int) -> None:
        width = max(2, len(str(count)))
        speed = self.conditions.speed_factor
        tracks = [_Track(r, self._frame, self.site, speed) for r in self.site.routes]
        per_track: list[list[_Vehicle]] = [[] for _ in tracks]
        for i in range(count):
            vid = f"shuttle-{i + 1:0{width}d}"
            track_no = i % len(tracks)
            v = _Vehicle(i, vid, random.Random(f"l4mon-sim:{seed}:{vid}"), tracks[track_no])
            v.phase = self._period * (1.0 - v.rng.random())
            v.state_topic = topics.state_topic(self.site.name, vid)
            v.event_topic = topics.event_topic(self.site.name, vid)
            v.links = [_Link(name, topics.link_topic(self.site.name, vid, name)) for name in LINKS]
            v.cruise *= speed
            for link in v.links:
                cond: LinkConditions = getattr(self.conditions, link.name)
                if cond.fades:
                    link.fade_rng = random.Random(f"l4mon-sim:{seed}:{vid}:{link.name}:fade")
                    link.fade_next = self._start + link.fade_rng.expovariate(
                        cond.fade_rate_per_min / 60.0
                    )
            per_track[track_no].append(v)
            self._vehicles.append(v)
            self.vehicle_ids.append(vid)
        for track, group in zip(tracks, per_track, strict=True):
            spacing = track.length / max(1, len(group))
            for k, v in enumerate(group):
                v.s = (k * spacing) % track.length
                v.ahead = group[(k + 1) % len(group)] if len(group) > 1 else None
                v.speed = min(v.cruise, track.limit[int(v.s / _LIMIT_STEP_M)])
                _, _, v.seg = track.position(v.s, 0)

    @property
    def now(self) -> float:
        """The latest time passed to ``advance`` (``start`` before the first call)."""
        return self._now

    def inject(self, fault: Fault) -> None:
        """Schedule ``fault``; it acts on the vehicle's ticks in ``[start, end)``.

        A fault that starts in the past acts only on the ticks still to come.
        """
        for v in self._vehicles:
            if v.id == fault.vehicle:
                v.faults.append(fault)
                return
        raise ValueError(f"unknown vehicle {fault.vehicle!r}")

    @property
    def cell_ids(self) -> list[str]:
        """The cells the simulated modems can be served by."""
        return sorted(c[0] for link in LINKS for c in self._cells[link])

    def cell_outage(self, cell: str, start: float, duration: float) -> None:
        """``cell`` goes dark during ``[start, start + duration)``, and nothing else covers
        its area (the rural case): a modem it serves, or that would attach to it, reports no
        service; a vehicle whose every modem is dark is cut off (nothing it sends arrives)."""
        if cell not in self.cell_ids:
            raise ValueError(f"unknown cell {cell!r}")
        if not (math.isfinite(start) and math.isfinite(duration) and duration > 0):
            raise ValueError("a cell outage needs a finite start and a positive duration")
        self._outages.append((cell, start, start + duration))

    def _dark_links(self, v: _Vehicle, x: float, y: float, t: float) -> list[bool] | None:
        self._outages = [o for o in self._outages if o[2] > t]
        dark_cells = {cell for cell, start, end in self._outages if start <= t < end}
        if not dark_cells:
            return None
        out = []
        for k, link in enumerate(v.links):
            cells = self._cells[LINKS[k]]
            if not cells:
                out.append(False)
                continue
            if link.serving >= 0:
                cell = cells[link.serving][0]
            else:
                cell = min(cells, key=lambda c: math.hypot(x - c[1], y - c[2]))[0]
            out.append(cell in dark_cells)
        return out

    def advance(self, now: float) -> list[tuple[str, bytes]]:
        """All messages due in (previous now, now], in time order, as (MQTT topic, JSON bytes).

        A ``now`` that is not later than the previous one returns nothing. Events queued while a
        vehicle could not send come out at its first tick that can, with their original ``ts``.
        """
        out: list[tuple[str, bytes]] = []
        if now <= self._now:
            return out
        heap = self._heap
        vehicles, rsus = self._vehicles, self._rsus
        while heap and heap[0][0] <= now:
            t, kind, i = heap[0]
            if kind == _VEHICLE:
                v = vehicles[i]
                self._vehicle_tick(v, t, out)
                v.tick += 1
                nxt = self._start + v.phase + v.tick * self._period
            else:
                r = rsus[i]
                self._rsu_tick(r, t, out)
                r.tick += 1
                nxt = self._start + r.phase + r.tick * self._rsu_period
            heapq.heapreplace(heap, (nxt, kind, i))
        self._now = now
        return out

    # -- vehicles ----------------------------------------------------------------------------

    def _vehicle_tick(self, v: _Vehicle, t: float, out: list[tuple[str, bytes]]) -> None:
        dt = self._period
        fx = _CLEAR
        if v.faults:
            v.faults = [f for f in v.faults if f.end > t]
            fx = _effects(v.faults, t)
        ts = t + fx.skew if fx.skew >= -t else 0.0

        if fx.mrm != (v.mode == "mrm"):
            kinds = ("takeover_request", "mrm_started") if fx.mrm else ("mrm_finished",)
            for kind in kinds:
                v.outbox.append(
                    VehicleEvent(ts=ts, kind=kind, seq=v.seq_event, detail=_EVENT_DETAIL[kind])
                )
                v.seq_event += 1
            v.mode = "mrm" if fx.mrm else "autonomous"

        x, y, moved = self._drive(v, dt)
        track = v.track
        lat, lon = self._frame.to_latlon(x, y)
        v2i = self._v2i(v, x, y, t, dt) if self._rsus else None

        dark = self._dark_links(v, x, y, t) if self._outages else None
        stalled, cut = fx.stalled, fx.cut or (dark is not None and all(dark))
        enc = self._encode
        if v.outbox and not (stalled or cut):
            for ev in v.outbox:
                out.append((v.event_topic, enc(ev)))
            v.outbox.clear()
        if not stalled:
            # Lost in transit when both links are down: the sequence number is used up.
            if not cut:
                state = VehicleState(
                    ts=ts,
                    seq=v.seq_state,
                    lat=round(lat, 7),
                    lon=round(lon, 7),
                    speed_mps=round(v.speed, 2),
                    heading_deg=track.heading[v.seg],
                    mode=v.mode,
                    v2i_rx=v2i,
                )
                out.append((v.state_topic, enc(state)))
            v.seq_state += 1
        for k, link in enumerate(v.links):
            if fx.down[k] or (dark is not None and dark[k]):
                link.serving = -1  # a dead modem re-attaches from scratch
                link.pending = -1
                link.after_ho = 0
                if dark is not None and dark[k] and not (cut or stalled):
                    # No service from the dark cell; the report leaves on the other link.
                    out.append((link.topic, enc(LinkSample(ts=ts, seq=link.seq, rat="none",
                                                           probe=False))))
                    link.seq += 1
                continue
            fade = self._fade(link, t) if link.fade_rng is not None else 0.0
            sample = self._measure(
                v,
                link,
                x=x,
                y=y,
                moved=moved,
                ts=ts,
                rtt_add=fx.rtt_add[k],
                ul_cap=fx.ul_cap[k],
                fade_db=fade,
            )
            if not stalled:
                out.append((link.topic, enc(sample)))
                link.seq += 1

    def _drive(self, v: _Vehicle, dt: float) -> tuple[float, float, float]:
        """Move one tick along the loop; returns the new position and the distance moved."""
        track = v.track
        rng = v.rng
        v.jitter = 0.98 * v.jitter + rng.gauss(0.0, 0.05)  # ~0.25 m/s of wander
        ahead_s = (v.s + v.speed * dt) % track.length  # the limit where this tick will end
        target = min(v.cruise + v.jitter, track.limit[int(ahead_s / _LIMIT_STEP_M)])
        brake = _BRAKE
        if v.mode == "mrm":
            target, brake = 0.0, _HARD_BRAKE
        ahead = v.ahead
        if ahead is not None:
            gap = (ahead.s - v.s) % track.length
            follow = max(0.0, (gap - _MIN_GAP_M) / _HEADWAY_S)
            if follow < target:
                target, brake = follow, _HARD_BRAKE
        dv = target - v.speed
        v.speed = max(0.0, v.speed + max(-brake * dt, min(_ACCEL * dt, dv)))
        moved = v.speed * dt
        s = v.s + moved
        if s >= track.length:
            s -= track.length
        v.s = s
        x, y, v.seg = track.position(s, v.seg)
        return x, y, moved

    def _fade(self, link: _Link, t: float) -> float:
        """The condition fade on ``link`` at sim time ``t`` (dB of extra antenna loss).

        Fades start as a Poisson process in sim time, each with its own depth and duration;
        the schedule depends only on the seed and ``t``, not on which ticks asked.
        """
        rng = link.fade_rng
        assert rng is not None
        cond: LinkConditions = getattr(self.conditions, link.name)
        while t >= link.fade_next:
            begin = link.fade_next
            link.fade_end = begin + cond.fade_duration_s * rng.uniform(0.5, 1.5)
            link.fade_db = cond.fade_depth_db * rng.uniform(0.5, 1.5)
            link.fade_next = begin + rng.expovariate(cond.fade_rate_per_min / 60.0)
        return link.fade_db if t < link.fade_end else 0.0

    def _v2i(self, v: _Vehicle, x: float, y: float, t: float, dt: float) -> dict[str, int] | None:
        """Cumulative V2I receptions from RSUs in range; delivery falls off with distance."""
        rng = v.rng
        seen: dict[str, int] | None = None
        for r in self._rsus:
            d = math.hypot(x - r.x, y - r.y)
            if d >= V2I_RANGE_M:
                continue
            sent = math.floor((t - r.boot) * V2I_RATE_HZ) - math.floor(
                (t - dt - r.boot) * V2I_RATE_HZ
            )
            pdr = 0.99 if d < 100.0 else 0.99 - 0.4 * (d - 100.0) / (V2I_RANGE_M - 100.0)
            got = sum(1 for _ in range(sent) if rng.random() < pdr)
            total = v.v2i.get(r.id, 0) + got
            v.v2i[r.id] = total
            if seen is None:
                seen = {}
            seen[r.id] = total
        return seen

    def _measure(
        self,
        v: _Vehicle,
        link: _Link,
        *,
        x: float,
        y: float,
        moved: float,
        ts: float,
        rtt_add: float,
        ul_cap: float,
        fade_db: float = 0.0,
    ) -> LinkSample:
        """One modem sample: serving cell with A3-style hysteresis, then radio and probe.

        ``fade_db`` is extra loss at the vehicle's antenna: every cell and the background
        interference are that much weaker; thermal noise is not.
        """
        radio = self._radio[link.name]
        cells = self._cells[link.name]
        if not cells:
            return LinkSample(ts=ts, seq=link.seq, rat="none")
        gauss, uniform01 = v.rng.gauss, v.rng.random
        ref, ref_m, ten_n = radio.ref_rsrp_dbm, radio.ref_m, 10.0 * radio.exponent
        floor = radio.floor_mw
        if fade_db:
            ref -= fade_db
            floor = 10.0 ** (radio.noise_dbm / 10.0) + 10.0 ** (
                (radio.background_dbm - fade_db) / 10.0
            )
        log10, hypot = math.log10, math.hypot
        mean = [
            ref - ten_n * log10(max(hypot(x - cx, y - cy), 10.0) / ref_m) for _, cx, cy, _ in cells
        ]
        best = mean.index(max(mean))
        serving = link.serving
        handover = False
        if serving < 0:
            serving = link.serving = best
            link.shadow = gauss(0.0, radio.shadow_db)
        elif best != serving and mean[best] > mean[serving] + radio.hysteresis_db:
            link.ttt = link.ttt + 1 if link.pending == best else 1
            link.pending = best
            if link.ttt * self._period >= radio.ttt_s:
                serving = link.serving = best
                link.pending, link.ttt = -1, 0
                link.shadow = gauss(0.0, radio.shadow_db)
                link.after_ho = 2
                handover = True
        else:
            link.pending, link.ttt = -1, 0
        # Shadowing as a first-order process over distance driven (Gudmundson).
        if moved > 0.0:
            rho = math.exp(-moved / radio.decorr_m)
            link.shadow = rho * link.shadow + math.sqrt(1.0 - rho * rho) * gauss(
                0.0, radio.shadow_db
            )
        rsrp = mean[serving] + link.shadow + gauss(0.0, 1.0)
        rsrp = -140.0 if rsrp < -140.0 else -44.0 if rsrp > -44.0 else rsrp
        signal = 10.0 ** (rsrp / 10.0)
        # Transmitter and receiver impairments (EVM) cap SINR in the low 30s dB however strong
        # the signal: a signal-proportional term joins noise and interference.
        interference = floor + signal * _SINR_CEILING
        for j in cells[serving][3]:
            interference += radio.load * 10.0 ** (mean[j] / 10.0)
        sinr = 10.0 * log10(signal / interference) + gauss(0.0, 1.5)
        sinr = -20.0 if sinr < -20.0 else 40.0 if sinr > 40.0 else sinr
        sinr_lin = 10.0 ** (sinr / 10.0)
        # RSRQ = RSRP / (RSSI per resource block): -10.8 dB at full load and high SINR,
        # higher when lightly loaded, lower as interference grows.
        # The neighbours' load fluctuates from sample to sample, so RSRQ jitters too.
        rsrq = radio.rsrq_top_db + 10.0 * log10(sinr_lin / (1.0 + sinr_lin)) + gauss(0.0, 0.7)
        rsrq = -20.0 if rsrq < -20.0 else -3.0 if rsrq > -3.0 else rsrq

        # Shannon-shaped throughput, saturating at full_snr_db; uplink is also power-limited.
        ul_snr = min(sinr, rsrp + radio.ul_budget_db)
        ul = radio.ul_max_kbps * min(1.0, math.log2(1.0 + 10.0 ** (ul_snr / 10.0)) / radio.full)
        dl = radio.dl_max_kbps * min(1.0, math.log2(1.0 + sinr_lin) / radio.full)
        ul *= 0.8 + 0.25 * uniform01()
        dl *= 0.8 + 0.25 * uniform01()

        rtt: float | None = radio.rtt_median_ms * math.exp(radio.rtt_sigma * gauss(0.0, 1.0))
        if rsrp < radio.rtt_good_rsrp:
            rtt *= 1.0 + 0.06 * (radio.rtt_good_rsrp - rsrp)
        if uniform01() < radio.spike_prob:
            rtt += 60.0 + 240.0 * uniform01()
        lost = uniform01() < (0.002 if sinr > 0.0 else 0.002 - 0.02 * sinr)
        if link.after_ho:
            link.after_ho -= 1
            if handover:
                lost = True  # the probe falls into the interruption
                ul *= 0.3
                dl *= 0.3
            else:
                rtt += 30.0 + 90.0 * uniform01()  # answered late, after the path switch
        rtt = None if lost else round(min(600_000.0, rtt + rtt_add), 1)
        return LinkSample(
            ts=ts,
            seq=link.seq,
            rat=radio.rat,
            cell_id=cells[serving][0],
            rsrp_dbm=round(rsrp, 1),
            rsrq_db=round(rsrq, 1),
            sinr_db=round(sinr, 1),
            rtt_ms=rtt,
            ul_kbps=round(min(ul, ul_cap), 1),
            dl_kbps=round(dl, 1),
        )

    # -- roadside units ----------------------------------------------------------------------

    def _rsu_tick(self, r: _Rsu, t: float, out: list[tuple[str, bytes]]) -> None:
        rng = r.rng
        # Backhaul over fibre / the local 5G core: a few ms, rarely more.
        rtt = 6.0 * math.exp(0.3 * rng.gauss(0.0, 1.0))
        if rng.random() < 0.005:
            rtt += rng.uniform(20.0, 150.0)
        r.cpu = min(95.0, max(3.0, r.cpu + 0.2 * (20.0 - r.cpu) + rng.gauss(0.0, 2.0)))
        status = RsuStatus(
            ts=t,
            seq=r.seq,
            intersection=r.intersection,
            health="ok",
            boot_id=r.boot_id,
            tx_msgs=math.floor((t - r.boot) * V2I_RATE_HZ),
            backhaul_rtt_ms=round(rtt, 1),
            cpu_pct=round(r.cpu, 1),
        )
        out.append((r.topic, self._encode(status)))
        r.seq += 1
