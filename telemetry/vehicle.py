"""One vehicle's picture: where it is, how it drives, and what its links add up to.

"Both links down" and "one link down" are different situations for a remote operator (the first
means nobody can see or reach the vehicle), so connectivity is derived from every link, not from
the worst one alone.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from telemetry.link import LinkTrack, LinkWatcher
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE, UNKNOWN, LinkThresholds
from telemetry.pace import SPACING_N, learned_interval, stream_limit
from telemetry.sequence import DUPLICATE, NEW, URGENT, SeqTracker
from telemetry.wire import ServiceStatus, VehicleEvent, VehicleState

#: Connectivity, from the vehicle's links.
CONNECTED: Final = "ok"
CONNECTED_DEGRADED: Final = "degraded"
ONE_LINK_DOWN: Final = "one_link_down"
ALL_LINKS_DOWN: Final = "all_links_down"
CONNECTIVITY: Final = (UNKNOWN, CONNECTED, CONNECTED_DEGRADED, ONE_LINK_DOWN, ALL_LINKS_DOWN)

FRESH: Final = "fresh"
EVENTS_KEPT: Final = 50

#: A vehicle's service (docs/protocol.md, ``service``): it says when it enters and leaves. A
#: vehicle that never said either is judged as in service while heard (what every vehicle was
#: before the protocol could say so).
IN_SERVICE: Final = "in_service"
OUT_OF_SERVICE: Final = "out_of_service"
#: The MQTT last will: the connection dropped without a word. Not a service status of its own.
OFFLINE: Final = "offline"
SERVICE_STATES: Final = (UNKNOWN, IN_SERVICE, OUT_OF_SERVICE)
#: The state stream's pace is re-measured after this many new state messages (every 2 s at
#: 10 Hz): it changes with the sender's setup, not from one message to the next.
PACE_EVERY_STATES: Final = 20


def connectivity(link_states: list[str]) -> str:
    usable = [s for s in link_states if s in (OK, DEGRADED)]
    dead = [s for s in link_states if s in (DOWN, STALE)]
    if not usable and not dead:
        return UNKNOWN
    if not usable:
        return ALL_LINKS_DOWN
    if dead:
        return ONE_LINK_DOWN
    if any(s == DEGRADED for s in usable):
        return CONNECTED_DEGRADED
    return CONNECTED


class VehicleTrack:
    """Per-vehicle state, bounded: at most ``max_links`` links and ``EVENTS_KEPT`` events."""

    __slots__ = ("id", "site", "state", "state_seq", "state_rx", "state_times", "state_limit_s",
                 "_paced_at", "links", "events", "event_seq", "telemetry", "connectivity",
                 "max_links", "unseen_events", "turn", "service", "service_since",
                 "service_reason", "serving", "unseen_service")

    def __init__(self, vehicle_id: str, site: str, *, max_links: int = 4, turn: int = 0) -> None:
        self.id = vehicle_id
        #: Which of the hub's ticks evaluates this vehicle's alert rules when nothing changed.
        self.turn = turn
        self.site = site
        self.state: VehicleState | None = None
        self.state_seq = SeqTracker()
        self.state_rx: float | None = None
        #: Receive times of the newest state messages: the stream's own pace, so a vehicle
        #: reporting every 3 s is not stale between two reports (telemetry/pace.py).
        self.state_times: deque[float] = deque(maxlen=SPACING_N + 1)
        #: Silence the state stream may keep by its learned pace; None until learned.
        self.state_limit_s: float | None = None
        self._paced_at = 0
        self.links: dict[str, LinkTrack] = {}
        self.events: deque[tuple[float, VehicleEvent]] = deque(maxlen=EVENTS_KEPT)
        #: Events not yet handed to the alert rules (drained by the hub after each batch).
        self.unseen_events: list[VehicleEvent] = []
        self.event_seq = SeqTracker()
        self.telemetry = UNKNOWN
        self.connectivity = UNKNOWN
        self.max_links = max_links
        #: In service, out of service, or unknown (never said); since when, and why.
        self.service = UNKNOWN
        self.service_since: float | None = None
        self.service_reason: str | None = None
        #: Whether the vehicle is in service, as far as the hub can tell: it said so, or never
        #: said anything (judged as before the protocol could say). Out of service, nothing
        #: is judged or raised for it. Kept with ``service`` (asked every tick).
        self.serving = True
        #: Service changes (and wills) not yet journaled and acted on by the hub's alert
        #: engine: (hub time, status said, reason).
        self.unseen_service: list[tuple[float, str, str | None]] = []

    def add_state(self, msg: VehicleState, now: float) -> int:
        """Take a state message: 0 duplicate, 1 new, URGENT when the vehicle has just begun a
        minimal risk manoeuvre (the hub then runs its rules right after this batch, as for a
        takeover request: an MRM is the vehicle stopping itself, not a figure to wait for)."""
        seq = self.state_seq
        number = msg.seq
        if number == seq.high + 1:  # the usual case, inlined as in LinkTrack.add
            seq.high = number
            seq.received += 1
        else:
            kind = seq.observe(number)
            if kind == DUPLICATE:
                return False
            if kind != NEW:
                return True  # late: counted, but older than the pose we show
        before = self.state
        self.state = msg
        self.state_rx = now
        self.state_times.append(now)
        if msg.mode == "mrm" and (before is None or before.mode != "mrm"):
            return URGENT
        return True

    def add_event(self, msg: VehicleEvent, now: float) -> int:
        """Keep the event; URGENT so the hub hands it to the alert rules after this batch."""
        if msg.seq is not None and self.event_seq.observe(msg.seq) == DUPLICATE:
            return False
        self.events.append((now, msg))
        if len(self.unseen_events) < EVENTS_KEPT:
            self.unseen_events.append(msg)
        return URGENT

    def add_service(self, msg: ServiceStatus, now: float) -> bool:
        """Take a service status. A change of service (or a will) is kept in
        ``unseen_service`` for the hub to journal and act on right after the batch; one that
        says what the hub knew (a retained copy, a redelivery) changes nothing. True either
        way: it is not a duplicate in the sense of a sequence."""
        status = msg.status
        if status == OFFLINE:
            self.unseen_service.append((now, OFFLINE, msg.reason))
            return True
        if status == self.service:
            return True
        self.set_service(status, now, msg.reason)
        self.restart(now)
        self.unseen_service.append((now, status, msg.reason))
        return True

    def set_service(self, status: str, since: float | None, reason: str | None) -> None:
        self.service, self.service_since, self.service_reason = status, since, reason
        self.serving = status != OUT_OF_SERVICE

    def restart(self, now: float) -> None:
        """A service period begins or ends: what the links did before says nothing of what they
        do next. Each link's state is unknown again and its silence counts from ``now``, its
        sequence and cell history start afresh (no loss, outage or handover across the
        change); the vehicle's telemetry is unknown until it reports, counted from ``now``.
        A vehicle that enters service and never reports is therefore stale in its own time,
        and one that leaves is no longer judged."""
        for link in self.links.values():
            link.restart(now)
        self.state_rx = now
        self.telemetry = UNKNOWN
        self.connectivity = UNKNOWN

    def heard_at(self) -> float | None:
        """When the vehicle last said anything (state, a link sample, an event, its service);
        None if never. For the fleet's newcomers (telemetry/newcomers.py), not the hot path."""
        times = [t for t in (self.state_rx, *(link.last_rx for link in self.links.values()))
                 if t is not None]
        if self.events:
            times.append(self.events[-1][0])
        return max(times, default=None)

    def link(self, name: str, *, phase: float = 0.0,
             handovers: LinkWatcher | None = None) -> LinkTrack | None:
        """The named link, created on first sight unless the vehicle already has too many."""
        track = self.links.get(name)
        if track is None and len(self.links) < self.max_links:
            track = self.links[name] = LinkTrack(name, phase=phase, owner=self,
                                                 handovers=handovers)
        return track

    def ul_kbps_usable(self, now: float, max_age_s: float) -> float | None:
        """Uplink the vehicle can count on now: the last measured rate of each link that is ok
        or degraded, summed. The operator's video rides whichever links are usable, so this
        one figure is what the alert rule (``ul_kbps_usable``) and the report's uplink budget
        both grade against the vehicle's requirement.

        0.0 when no link is usable (link states say nothing can carry it), for a vehicle
        whose links report their uplink at all. None — not measured — when none ever has, or
        a usable link has no uplink measurement within ``max_age_s``: a sum missing a link is
        no evidence of a shortfall, and a rule or budget on it must not judge.
        """
        if all(link.ul_at is None for link in self.links.values()):
            return None
        usable = 0.0
        for link in self.links.values():
            if link.health.state in (OK, DEGRADED):
                at = link.ul_at
                if at is None or now - at > max_age_s:
                    return None
                usable += link.ul_kbps_last
        return usable

    def telemetry_limit(self, thr: LinkThresholds) -> float:
        """How long the state stream may be silent and still be fresh: by its learned pace
        (re-measured every ``PACE_EVERY_STATES`` messages), its declared one, or unlearned."""
        received = self.state_seq.received
        if self.state_limit_s is None or received - self._paced_at >= PACE_EVERY_STATES:
            learned = learned_interval(self.state_times)
            if learned is not None:
                self._paced_at = received
                state = self.state
                self.state_limit_s = stream_limit(
                    thr.stale_after_s, thr.unlearned_stale_after_s, learned,
                    state.interval_s if state is not None else None)
        if self.state_limit_s is not None:
            return self.state_limit_s
        state = self.state
        return stream_limit(thr.stale_after_s, thr.unlearned_stale_after_s, None,
                            state.interval_s if state is not None else None)

    def refresh(self, now: float, thr: LinkThresholds) -> bool:
        """Re-derive telemetry freshness and connectivity; True when either changed."""
        if self.state_rx is None:
            telemetry = UNKNOWN
        else:
            limit = self.state_limit_s  # the usual case, inlined: every vehicle, every tick
            if limit is None or self.state_seq.received - self._paced_at >= PACE_EVERY_STATES:
                limit = self.telemetry_limit(thr)
            telemetry = STALE if now - self.state_rx > limit else FRESH
        conn = connectivity([t.health.state for t in self.links.values()])
        changed = telemetry != self.telemetry or conn != self.connectivity
        self.telemetry = telemetry
        self.connectivity = conn
        return changed
