"""``SimFleet``: a site's shuttles and RSUs, ticking in global time order, as protocol v1 messages.

The caller owns time: ``advance(now)`` returns every message due since the previous call, so
the same fleet runs in the hub's event loop on a live clock, or in a test or benchmark on a
virtual one. Each vehicle and RSU ticks on its own fixed grid (``start + phase + n / rate``)
with its own seeded RNG, and ticks run in global time order; so the bytes depend only on the
seed, the faults injected and the times asked for, not on how calls split the timeline.

A vehicle's tick, in order: the faults active now, the events they cause, one step of driving
(``motion``), V2I receptions (``roadside``), cell outages (``faults``), then one sample per
modem (``radio``). Weather and time of day come from a ``ConditionModel``
(scenarios/conditions.py): the radio under them, condition fades, and the speed profile.
"""

from __future__ import annotations

import heapq
import random
from typing import Final

import msgspec

from scenarios.conditions import CLEAR_DAYLIGHT, ConditionModel
from scenarios.sim.faults import NO_EFFECTS, CellOutages, Fault, effects_at
from scenarios.sim.links import LINKS
from scenarios.sim.motion import Motion, Track, space_evenly
from scenarios.sim.obey import Obedience
from scenarios.sim.radio import Modem, RadioNetwork
from scenarios.sim.roadside import Rsu, v2i_receptions
from telemetry import topics
from telemetry.commands import answer_topic, encode
from telemetry.site import Site
from telemetry.wire import LinkSample, Mode, ServiceStatus, VehicleEvent, VehicleState

_EVENT_DETAIL: Final[dict[str, str]] = {
    "takeover_request": "system asked a remote operator to take over (simulated fault)",
    "mrm_started": "minimal risk manoeuvre: controlled stop in lane",
    "mrm_finished": "minimal risk manoeuvre ended; autonomous driving resumed",
}
#: ``mrm_started`` when the operator commanded the stop, not a fault.
_COMMANDED_MRM: Final = "minimal risk manoeuvre: controlled stop in lane, commanded by the operator"

# What a tick in the schedule belongs to: (time, kind, index into its list).
_VEHICLE: Final = 0
_RSU: Final = 1


class _Vehicle:
    """One simulated shuttle: its RNG, its motion, its modems and what it has to send."""

    __slots__ = (
        "answer_topic", "event_topic", "faults", "id", "index", "mode", "modems", "motion",
        "obey", "outbox", "phase", "rng", "seq_event", "seq_state", "service", "service_topic",
        "state_topic", "tick", "v2i", "want",
    )  # fmt: skip

    def __init__(self, index: int, vid: str, rng: random.Random, motion: Motion) -> None:
        self.index = index
        self.id = vid
        #: Shared by motion, V2I and every modem's sample, drawn in tick order.
        self.rng = rng
        self.phase = 0.0
        self.tick = 0
        self.motion = motion
        self.mode: Mode = "autonomous"
        self.state_topic = ""
        self.event_topic = ""
        self.modems: list[Modem] = []  # in the order of LINKS
        self.seq_state = 0
        self.seq_event = 0
        self.faults: list[Fault] = []
        self.outbox: list[VehicleEvent] = []  # events waiting for a tick that can send them
        self.v2i: dict[str, int] = {}  # V2I messages received so far, per RSU
        self.service_topic = ""
        #: Its service: None until announced at its first tick, then the status it said;
        #: a pending change is ("in_service" | "out_of_service", reason) in ``want``.
        self.service: str | None = None
        self.want: tuple[str, str | None] | None = ("in_service", None)
        #: The operator's commands (scenarios/sim/obey.py) and where it answers them.
        self.obey = Obedience()
        self.answer_topic = ""


class SimFleet:
    """Simulated shuttles and RSUs of one site, producing protocol v1 topics and JSON payloads.

    Vehicles are spread evenly over the site's routes and along each loop, keep a following
    distance, and slow down in intersections. Each vehicle ticks at ``rate_hz`` and then sends
    its state and both link samples with the same ``ts``; each RSU ticks at ``rsu_rate_hz``
    (0 disables RSU status). Nothing is sent at ``start`` itself: the first tick of each
    source falls within its first period after ``start``. A vehicle's first tick announces
    that it is in service; ``end_service`` and ``start_service`` change that.
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
        self._start = start
        self._now = start
        self._period = 1.0 / rate_hz
        self._rsu_period = 1.0 / rsu_rate_hz if rsu_rate_hz else 0.0
        self._encode = msgspec.json.Encoder().encode
        self._frame = site.frame()
        #: One radio network per link, in the order of LINKS.
        self._networks = [
            RadioNetwork(link, site=site, frame=self._frame,
                         conditions=getattr(conditions, link), tick_s=self._period)
            for link in LINKS
        ]
        self._rsus: list[Rsu] = []
        for r in site.rsus:
            rsu = Rsu(
                r.id,
                r.intersection,
                topics.rsu_topic(site.name, r.id),
                random.Random(f"l4mon-sim:{seed}:rsu:{r.id}"),
                weather=None if conditions.conditions.weather == "unknown"
                else conditions.conditions.weather,
            )
            rsu.x, rsu.y = self._frame.to_xy(r.lat, r.lon)
            rsu.boot_before(start, self._rsu_period)
            self._rsus.append(rsu)
        self._outages = CellOutages()
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
        site = self.site
        tracks = [Track(r, self._frame, site, speed) for r in site.routes]
        per_track: list[list[Motion]] = [[] for _ in tracks]
        for i in range(count):
            vid = f"shuttle-{i + 1:0{width}d}"
            track_no = i % len(tracks)
            rng = random.Random(f"l4mon-sim:{seed}:{vid}")
            motion = Motion(tracks[track_no], rng, speed)  # draws the cruise speed first
            v = _Vehicle(i, vid, rng, motion)
            v.phase = self._period * (1.0 - rng.random())
            v.state_topic = topics.state_topic(site.name, vid)
            v.event_topic = topics.event_topic(site.name, vid)
            v.service_topic = topics.service_topic(site.name, vid)
            v.answer_topic = answer_topic(site.name, vid)
            for net in self._networks:
                modem = Modem(net.name, topics.link_topic(site.name, vid, net.name))
                net.arm_fades(modem, rng_seed=f"l4mon-sim:{seed}:{vid}:{net.name}:fade",
                              start=self._start)
                v.modems.append(modem)
            per_track[track_no].append(motion)
            self._vehicles.append(v)
            self.vehicle_ids.append(vid)
        for track, group in zip(tracks, per_track, strict=True):
            space_evenly(track, group)

    @property
    def now(self) -> float:
        """The latest time passed to ``advance`` (``start`` before the first call)."""
        return self._now

    def inject(self, fault: Fault) -> None:
        """Schedule ``fault``; it acts on the vehicle's ticks in ``[start, end)``.

        A fault that starts in the past acts only on the ticks still to come.
        """
        self._vehicle(fault.vehicle).faults.append(fault)

    def _vehicle(self, vehicle: str) -> _Vehicle:
        for v in self._vehicles:
            if v.id == vehicle:
                return v
        raise ValueError(f"unknown vehicle {vehicle!r}")

    def end_service(self, vehicle: str, reason: str | None = None) -> None:
        """The vehicle leaves service at its next tick: it says so (``out_of_service``), then
        sends nothing until ``start_service``, as a shuttle that ends its shift and powers off."""
        self._vehicle(vehicle).want = ("out_of_service", reason)

    def start_service(self, vehicle: str, reason: str | None = None) -> None:
        """The vehicle enters service again at its next tick, and reports from then on."""
        self._vehicle(vehicle).want = ("in_service", reason)

    def command(self, vehicle: str, payload: bytes) -> bool:
        """A command's bytes reach ``vehicle`` (from the broker, or the demo's hub): taken at
        its next tick that can hear (not while both links are down: the broker keeps it),
        answered on its ``command_ack`` topic. False when the bytes are no command."""
        return self._vehicle(vehicle).obey.deliver(payload)

    def mode(self, vehicle: str) -> Mode:
        return self._vehicle(vehicle).mode

    def in_service(self, vehicle: str) -> bool:
        return self._vehicle(vehicle).service == "in_service"

    @property
    def cell_ids(self) -> list[str]:
        """The cells the simulated modems can be served by."""
        return sorted(c.id for net in self._networks for c in net.cells)

    def cell_outage(self, cell: str, start: float, duration: float) -> None:
        """``cell`` goes dark during ``[start, start + duration)``, and nothing else covers
        its area (the rural case): a modem it serves, or that would attach to it, reports no
        service; a vehicle whose every modem is dark is cut off (nothing it sends arrives)."""
        if cell not in self.cell_ids:
            raise ValueError(f"unknown cell {cell!r}")
        self._outages.add(cell, start, duration)

    def _dark_modems(self, v: _Vehicle, x: float, y: float, t: float) -> list[bool] | None:
        """Per modem, whether the cell it uses (or would) is dark at ``t``; ``None`` if no
        cell is dark."""
        dark_cells = self._outages.dark_at(t)
        if not dark_cells:
            return None
        return [
            net.cell_in_use(modem, x, y) in dark_cells
            for net, modem in zip(self._networks, v.modems, strict=True)
        ]

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
                out.append((r.topic, self._encode(r.status(t))))
                r.tick += 1
                nxt = self._start + r.phase + r.tick * self._rsu_period
            heapq.heapreplace(heap, (nxt, kind, i))
        self._now = now
        return out

    def _vehicle_tick(self, v: _Vehicle, t: float, out: list[tuple[str, bytes]]) -> None:
        if v.want is not None:  # announced first, with QoS 1 (publishers retain it)
            status, reason = v.want
            v.want = None
            if status != v.service:
                v.service = status
                out.append((v.service_topic, self._encode(
                    ServiceStatus(ts=t, status=status, reason=reason))))  # type: ignore[arg-type]
        if v.service != "in_service":
            return  # out of service: powered off, it sends nothing
        dt = self._period
        fx = NO_EFFECTS
        if v.faults:
            v.faults = [f for f in v.faults if f.end > t]
            fx = effects_at(v.faults, t)
        ts = t + fx.skew if fx.skew >= -t else 0.0
        obey = v.obey
        if obey.inbox and not (fx.cut or fx.deaf):  # both links down: nothing reaches it
            obey.take(ts, fault_holds=fx.mrm, link_down=any(fx.down))
        mrm = fx.mrm or obey.held is not None

        if mrm != (v.mode == "mrm"):
            kinds = (("takeover_request", "mrm_started") if fx.mrm else ("mrm_started",)) \
                if mrm else ("mrm_finished",)
            for kind in kinds:
                detail = _COMMANDED_MRM if kind == "mrm_started" and not fx.mrm \
                    else _EVENT_DETAIL[kind]
                v.outbox.append(VehicleEvent(ts=ts, kind=kind, seq=v.seq_event, detail=detail))
                v.seq_event += 1
            v.mode = "mrm" if mrm else "autonomous"

        motion = v.motion
        x, y, moved = motion.drive(dt, mrm=v.mode == "mrm")
        if obey.stopping is not None and motion.speed == 0.0:
            obey.stood_still(ts)
        lat, lon = self._frame.to_latlon(x, y)
        v2i = (
            v2i_receptions(self._rsus, v.v2i, v.rng, x=x, y=y, t=t, dt=dt) if self._rsus else None
        )

        dark = self._dark_modems(v, x, y, t) if self._outages else None
        stalled, cut = fx.stalled, fx.cut or (dark is not None and all(dark))
        enc = self._encode
        if v.outbox and not (stalled or cut):
            for ev in v.outbox:
                out.append((v.event_topic, enc(ev)))
            v.outbox.clear()
        if obey.answers and not cut:
            out.extend((v.answer_topic, encode(answer)) for answer in obey.answers)
            obey.answers.clear()
        if not stalled:
            # Lost in transit when both links are down: the sequence number is used up.
            if not cut:
                state = VehicleState(
                    ts=ts,
                    seq=v.seq_state,
                    lat=round(lat, 7),
                    lon=round(lon, 7),
                    speed_mps=round(motion.speed, 2),
                    heading_deg=motion.heading,
                    mode=v.mode,
                    v2i_rx=v2i,
                )
                out.append((v.state_topic, enc(state)))
            v.seq_state += 1
        for k, (net, modem) in enumerate(zip(self._networks, v.modems, strict=True)):
            if fx.down[k] or (dark is not None and dark[k]):
                modem.detach()
                if dark is not None and dark[k] and not (cut or stalled):
                    # No service from the dark cell; the report leaves on the other link.
                    out.append((modem.topic, enc(LinkSample(ts=ts, seq=modem.seq, rat="none",
                                                            probe=False))))
                    modem.seq += 1
                continue
            fade = net.fade_at(modem, t) if modem.fade_rng is not None else 0.0
            sample = net.measure(
                modem,
                v.rng,
                x=x,
                y=y,
                moved=moved,
                ts=ts,
                rtt_add=fx.rtt_add[k],
                ul_cap=fx.ul_cap[k],
                fade_db=fade,
            )
            if not stalled:
                out.append((modem.topic, enc(sample)))
                modem.seq += 1
