"""The facts a rule condition may name, per scope, computed from fleet state at a given time.

Each scope's fact names are listed once (``*_FACTS``) so rules are validated against them when
loaded; the classes compute exactly those names. Missing values are ``None``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from handover.book import HandoverEntry
from handover.intersections import CHANGES
from l4mon.ingest.refusals import SILENT_CLOSES
from telemetry.fleet import RsuTrack
from telemetry.link import LinkTrack
from telemetry.linkmap.cause import cause_of
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE, UNKNOWN
from telemetry.vehicle import IN_SERVICE, VehicleTrack
from telemetry.wire import VehicleEvent

if TYPE_CHECKING:
    from handover.intersections import IntersectionBook
    from l4mon.ingest.mqtt_status import MqttStatus
    from l4mon.ingest.refused_senders import SenderRecord
    from l4mon.site_watch import SiteFeed
    from l4mon.store.keeper import JournalKeeper
    from telemetry.linkmap.outlook import LinkAhead

VEHICLE_FACTS: Final = frozenset({
    "connectivity", "telemetry", "mode", "speed_mps", "telemetry_age_s", "links_total",
    "links_ok", "links_degraded", "links_down", "ul_kbps_usable", "ul_required_kbps",
    "clock_suspect", "site",
    # the words for a vehicle of one to four links, for titles ("its only link", "all 3 links")
    "links_down_phrase", "links_rest_phrase",
    # its service (telemetry/vehicle.py): in_service, out_of_service, unknown (never said)
    "service",
    # with a timetable ([service], l4mon/timetable.py): planned in service now (None: the
    # timetable does not name it); running: in service, or never said and its telemetry fresh
    "planned", "running",
})
LINK_FACTS: Final = frozenset({
    "link", "state", "rat", "cell_id", "rtt_p95_ms", "loss_ratio", "rsrp_dbm", "sinr_db",
    "ul_kbps", "dl_kbps", "age_s", "clock_suspect", "vehicle_mode", "vehicle_connectivity",
    # the link map's look-ahead (telemetry/linkmap/outlook.py); None without a map or pose
    "weak_ahead", "weak_ahead_in_s", "weak_ahead_m", "weak_ahead_share", "weak_ahead_passes",
    "weak_ahead_ul_p05_kbps", "ahead_mapped",
    # which way the stretch failed (telemetry/linkmap/cause.py): down, short_of_uplink,
    # impaired; and its RTT p95 and probe loss, what impaired it
    "weak_ahead_cause", "weak_ahead_rtt_p95_ms", "weak_ahead_loss_ratio",
})
RSU_FACTS: Final = frozenset({"health", "age_s", "intersection", "site"})
EVENT_FACTS: Final = frozenset({"kind", "detail"})
#: One final handover record (handover/detect.py) and where it happened.
HANDOVER_FACTS: Final = frozenset({
    "kind", "link", "intersection", "intersection_name", "in_intersection", "interruption_ms",
    "inter_rat", "from_cell", "to_cell", "from_rat", "to_rat", "rsrp_before", "rsrp_after",
    "sinr_before", "sinr_after", "dwell_s", "returned_after_s",
})
#: One intersection of the site, from the intersection book (handover/intersections.py).
INTERSECTION_FACTS: Final = frozenset({
    "intersection", "name", "ping_pongs_recent", "ping_pong_cells", "handovers", "failures",
    "vehicles_in_zone", "v2i_delivery_ratio",
})

#: One site's feed as the hub sees it (l4mon/site_watch.py): can the hub see the site at all?
SITE_FACTS: Final = frozenset({"site", "feed", "reason", "vehicles", "moving", "blind_for_s"})

#: The hub itself: can it keep what it decides (its journal, l4mon/store/keeper.py), and is
#: its broker session its own (l4mon/ingest/refusals.py; None without a broker)?
HUB_FACTS: Final = frozenset({"journal", "journal_error", "unjournaled", "journal_down_s",
                              "mqtt_session", "session_takeovers", "session_taken_over_s",
                              "broker_closes_recent"})
#: One sender (a vehicle or RSU, named by its topic) of messages the transport refused:
#: oversized packets, retained events (l4mon/ingest/refusals.py).
SENDER_FACTS: Final = frozenset({"sender", "family", "site", "reason", "refused_recent",
                                 "refused_total", "window_s"})

SCOPE_FACTS: Final = {"vehicle": VEHICLE_FACTS, "link": LINK_FACTS, "rsu": RSU_FACTS,
                      "event": EVENT_FACTS, "handover": HANDOVER_FACTS,
                      "intersection": INTERSECTION_FACTS, "site": SITE_FACTS,
                      "hub": HUB_FACTS, "sender": SENDER_FACTS}
#: How long a session taken over, or a refusal, counts as recent: long enough for a console
#: to show it, short enough that an alert resolves once it stopped.
RECENT_S: Final = 60.0


def links_down_phrase(down: int, total: int) -> str:
    """The links that are down, in words that fit one to four links: "its only link", "both
    links", "all 3 links", "one link" (of two), "2 of 4 links"."""
    if total == 1:
        return "its only link"
    if down == total:
        return "both links" if total == 2 else f"all {total} links"
    if down == 1 and total == 2:
        return "one link"
    return f"{down} of {total} links"


def links_rest_phrase(down: int, total: int) -> str:
    """The links that are not down: "the other" (of two), "the remaining one", "the other 2"."""
    rest = total - down
    if rest <= 0:
        return "none"
    if rest == 1:
        return "the other" if total == 2 else "the remaining one"
    return f"the other {rest}"


class VehicleFacts:
    #: The phrases are words for a title, asked only when an alert is raised: properties.
    __slots__ = tuple(sorted(VEHICLE_FACTS - {"links_down_phrase", "links_rest_phrase"}))

    def __init__(self, vehicle: VehicleTrack, now: float, *, ul_required_kbps: float | None,
                 ul_max_age_s: float = 10.0, planned: bool | None = None) -> None:
        state = vehicle.state
        self.site = vehicle.site
        self.connectivity = vehicle.connectivity
        self.telemetry = vehicle.telemetry
        self.mode = state.mode if state else None
        self.speed_mps = state.speed_mps if state else None
        self.telemetry_age_s = None if vehicle.state_rx is None else now - vehicle.state_rx
        states = [link.health.state for link in vehicle.links.values()]
        self.links_total = len(states)
        self.links_ok = states.count(OK)
        self.links_degraded = states.count(DEGRADED)
        self.links_down = states.count(DOWN) + states.count(STALE)
        self.service = vehicle.service
        self.planned = planned
        self.running = vehicle.service == IN_SERVICE or (
            vehicle.service == UNKNOWN and vehicle.telemetry == "fresh")
        self.ul_kbps_usable = vehicle.ul_kbps_usable(now, ul_max_age_s)
        self.ul_required_kbps = ul_required_kbps
        self.clock_suspect = any(link.clock_suspect for link in vehicle.links.values())


    @property
    def links_down_phrase(self) -> str:
        return links_down_phrase(self.links_down, self.links_total)

    @property
    def links_rest_phrase(self) -> str:
        return links_rest_phrase(self.links_down, self.links_total)


class LinkFacts:
    __slots__ = (*sorted(LINK_FACTS), "ahead")

    def __init__(self, vehicle: VehicleTrack, link: LinkTrack, now: float,
                 ahead: LinkAhead | None = None) -> None:
        last = link.last
        self.link = link.name
        self.state = link.health.state
        self.rat = last.rat if last else None
        self.cell_id = last.cell_id if last else None
        self.rtt_p95_ms = link.judged_rtt_p95_ms
        self.loss_ratio = link.judged_loss_ratio
        self.rsrp_dbm = last.rsrp_dbm if last else None
        self.sinr_db = last.sinr_db if last else None
        self.ul_kbps = last.ul_kbps if last else None
        self.dl_kbps = last.dl_kbps if last else None
        self.age_s = link.age(now)
        self.clock_suspect = link.clock_suspect
        self.vehicle_mode = vehicle.state.mode if vehicle.state else None
        self.vehicle_connectivity = vehicle.connectivity
        self.ahead = ahead
        spot = ahead.outlook.spot if ahead is not None else None
        self.weak_ahead = None if ahead is None else spot is not None
        self.ahead_mapped = None if ahead is None else ahead.outlook.mapped
        if spot is None or ahead is None:
            self.weak_ahead_in_s = self.weak_ahead_m = self.weak_ahead_share = None
            self.weak_ahead_passes = self.weak_ahead_ul_p05_kbps = None
            self.weak_ahead_cause = None
            self.weak_ahead_rtt_p95_ms = self.weak_ahead_loss_ratio = None
        else:
            self.weak_ahead_in_s = ahead.in_s
            self.weak_ahead_m = spot.distance_m
            self.weak_ahead_share = spot.share
            self.weak_ahead_passes = spot.passes
            self.weak_ahead_ul_p05_kbps = spot.stats.ul.percentiles(5)[0]
            cause = cause_of(spot.stats, ahead.measure)
            self.weak_ahead_cause = cause.kind
            self.weak_ahead_rtt_p95_ms = cause.rtt_p95_ms
            self.weak_ahead_loss_ratio = cause.loss_ratio


class RsuFacts:
    __slots__ = tuple(sorted(RSU_FACTS))

    def __init__(self, rsu: RsuTrack, now: float) -> None:
        last = rsu.last
        self.site = rsu.site
        self.health = last.health if last else None
        self.intersection = last.intersection if last else None
        self.age_s = None if rsu.last_rx is None else now - rsu.last_rx


class EventFacts:
    __slots__ = tuple(sorted(EVENT_FACTS))

    def __init__(self, event: VehicleEvent) -> None:
        self.kind = event.kind
        self.detail = event.detail


class HandoverFacts:
    __slots__ = tuple(sorted(HANDOVER_FACTS))

    def __init__(self, entry: HandoverEntry, intersection_name: str | None) -> None:
        h = entry.record
        self.kind = h.kind
        self.link = entry.link
        self.intersection = entry.intersection
        self.intersection_name = intersection_name
        self.in_intersection = entry.intersection is not None
        self.interruption_ms = h.interruption_ms
        self.inter_rat = h.inter_rat
        self.from_cell = h.from_cell
        self.to_cell = h.to_cell
        self.from_rat = h.from_rat
        self.to_rat = h.to_rat
        self.rsrp_before = h.rsrp_before
        self.rsrp_after = h.rsrp_after
        self.sinr_before = h.sinr_before
        self.sinr_after = h.sinr_after
        self.dwell_s = h.dwell_s
        self.returned_after_s = h.returned_after_s

    def summary(self) -> str:
        where = f" in {self.intersection_name or self.intersection}" if self.intersection else ""
        return (f"{self.kind} on {self.link}{where}: {self.from_cell} ({self.from_rat}) → "
                f"{self.to_cell} ({self.to_rat}), interruption {self.interruption_ms:.0f} ms")


class IntersectionFacts:
    __slots__ = (*sorted(INTERSECTION_FACTS), "_window_s")

    def __init__(self, book: IntersectionBook, intersection: str, now: float) -> None:
        count, pair = book.hotspot(intersection, now)
        self.intersection = intersection
        self.name = book.zones.name(intersection)
        self.ping_pongs_recent = count
        self.ping_pong_cells = " ↔ ".join(pair) if pair else None
        links = [b for (ix, _), b in book.links.items() if ix == intersection]
        self.handovers = sum(b.kinds[k] for b in links for k in CHANGES)
        self.failures = sum(b.kinds["failure"] for b in links)
        self.vehicles_in_zone = sum(1 for v in book.zones_members() if v == intersection)
        v2i = book.v2i.get(intersection)
        self.v2i_delivery_ratio = v2i.delivery_ratio if v2i is not None else None
        self._window_s = book.hotspot_window_s

    def summary(self) -> str:
        parts = [f"{self.name} ({self.intersection})"]
        if self.ping_pongs_recent:
            parts.append(f"{self.ping_pongs_recent} ping-pong handovers in the last "
                         f"{self._window_s:g} s, most between cells {self.ping_pong_cells}")
        if self.failures:
            parts.append(f"{self.failures} handover failures")
        if self.v2i_delivery_ratio is not None:
            parts.append(f"V2I delivery {self.v2i_delivery_ratio:.1%}")
        return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


class SiteFacts:
    __slots__ = (*sorted(SITE_FACTS), "_feed")

    def __init__(self, site: str, feed: SiteFeed, now: float) -> None:
        self.site = site
        self.feed = feed.state
        self.reason = feed.reason
        self.vehicles = len(feed.vehicles)
        self.moving = len(feed.moving)
        self.blind_for_s = None if feed.blind_since is None else now - feed.blind_since
        self._feed = feed

    def summary(self) -> str:
        feed = self._feed
        since = "" if feed.blind_since is None else \
            time.strftime(" since %H:%M:%S UTC", time.gmtime(feed.blind_since))
        moving = ", ".join(f"{v} ({speed:.0f} m/s)" for v, speed in feed.moving)
        return (f"The hub cannot see site {self.site}{since}: {feed.reason}. The state of its "
                f"{len(feed.vehicles)} vehicles is unknown, not down; moving then: "
                f"{moving or 'none'}.")


class HubFacts:
    __slots__ = tuple(sorted(HUB_FACTS))

    def __init__(self, keeper: JournalKeeper, now: float,
                 mqtt: MqttStatus | None = None) -> None:
        self.journal = "ok" if keeper.ok else "down"
        self.journal_error = keeper.last_error
        self.unjournaled = keeper.queued
        self.journal_down_s = None if keeper.down_since is None else now - keeper.down_since
        if mqtt is None:
            self.mqtt_session = self.session_takeovers = self.session_taken_over_s = None
            self.broker_closes_recent = None
            return
        closes = [t for t in mqtt.broker_closes if now - RECENT_S <= t <= now]
        self.broker_closes_recent = len(closes)
        said = mqtt.session_taken_over_at
        contested = closes[-1] if len(closes) >= SILENT_CLOSES else None
        at = max((t for t in (said, contested) if t is not None), default=None)
        self.session_takeovers = mqtt.session_takeovers
        self.session_taken_over_s = None if at is None else now - at
        self.mqtt_session = "taken_over" if at is not None and now - at <= RECENT_S else "ok"

    def summary(self) -> str:
        """What is wrong with the hub itself, whichever hub rule asks."""
        said = []
        if self.journal != "ok":
            kept = f"; {self.unjournaled} alert transitions kept in memory, journaled when " \
                "it is back" if self.unjournaled else ""
            said.append(
                f"The alert journal does not take writes ({self.journal_error or 'no answer'})"
                f"{kept}. Alerts still reach this console; acknowledging and resolving wait "
                "until the journal is back, and QoS 1 messages are not acknowledged to the "
                "broker until what they raised is journaled.")
        if self.mqtt_session == "taken_over":
            # Mosquitto 2.0 says nothing when it hands the session over: then the hub only
            # knows its connection was closed unasked again and again, which a broker
            # restarting in a loop would do too, so the text says which it knows.
            why = (f"another client connected with the hub's client id (said by the broker "
                   f"{self.session_takeovers} times since start)" if self.session_takeovers
                   else f"the broker closed the hub's connection unasked "
                   f"{self.broker_closes_recent} times in {RECENT_S:g} s, which is what it "
                   "does when another client connects with the hub's client id (or when the "
                   "broker itself restarts again and again)")
            said.append(
                f"The broker ended this hub's session {self.session_taken_over_s or 0:.0f} s "
                f"ago: {why}. That client may have received messages meant for the hub, "
                "events among them. The hub reconnects by itself; find the client in the "
                "broker's log (\"already connected, closing old connection\") and bind client "
                "ids to certificates (docs/operations.md, \"Threats and bounds\").")
        return " ".join(said) or "the alert journal takes writes again"


class SenderFacts:
    """A sender of refused messages, as ``RefusedSenders`` keeps it (None: none recently)."""

    __slots__ = (*sorted(SENDER_FACTS), "_record")

    def __init__(self, sender: str, record: SenderRecord | None, now: float,
                 window_s: float = RECENT_S) -> None:
        self.sender = sender
        self.window_s = window_s
        self._record = record
        if record is None:
            self.family = self.site = self.reason = None
            self.refused_recent = self.refused_total = 0
            return
        self.family = record.family
        self.site = record.site
        self.reason = record.last_reason
        self.refused_total = record.total
        self.refused_recent = record.recent(now, window_s)

    def summary(self) -> str:
        record = self._record
        if record is None:
            return f"{self.sender}: nothing refused for {self.window_s:g} s"
        where = f" of site {self.site}" if self.site else ""
        return (f"{self.family} {self.sender}{where}: {self.refused_recent} message(s) refused "
                f"in the last {self.window_s:g} s, {self.refused_total} since the hub started; "
                f"last {self.reason} on {record.last_topic or '(no topic read)'}: "
                f"{record.last_detail}. Kept in the quarantine "
                f"(GET /api/quarantine?reason={self.reason}).")

