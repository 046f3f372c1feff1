"""Can the hub see each site? Its own blindness is a state with a reason, not 20 takeovers.

When the broker connection drops, every vehicle goes silent at once and, judged one by one,
every vehicle is "unreachable": a flood of takeover alerts on the one day an operator must not
be misled. So the feed of each site is watched as a whole (Alertmanager's watchdog and
inhibition, applied to the hub itself):

* ``lost`` — the transport says it is down (live: the MQTT connection), or, while it is up, no
  message at all has come from any vehicle of the site for ``lost_after_s`` although at least
  ``min_vehicles`` of them were reporting (a bridge, an ACL, the network between broker and
  site). One vehicle's silence is that vehicle's own, and judged as such.
* ``recovering`` — messages flow again; for ``grace_s`` the vehicles get time to report before
  they are judged again.
* ``ok`` otherwise.

While a site is not ``ok``, or merely silent for ``suspect_after_s`` (before it is declared
lost), the per-vehicle rules that name ``hub_feed_lost`` in ``inhibited_by`` hold: the
vehicles' state is unknown, not down. Every decision takes the clock it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from telemetry.fleet import Fleet

OK: Final = "ok"
LOST: Final = "lost"
RECOVERING: Final = "recovering"
#: A vehicle at this speed or more was moving when the feed was lost (m/s).
MOVING_MPS: Final = 0.5


class FeedSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[feed]`` table of the hub config."""

    #: No message from any vehicle of a site for this long (transport up): the feed is lost.
    #: As short as a link's staleness (1 s), so it is declared before links are judged stale.
    lost_after_s: float = 1.0
    #: Silent this long: per-vehicle alerts already wait, in case the site is going blind.
    suspect_after_s: float = 0.5
    #: After the feed is back, vehicles have this long to report before they are judged.
    grace_s: float = 5.0
    #: Silence says "the hub is blind" only for a site with at least this many vehicles
    #: reporting within ``active_within_s``; for fewer it is the vehicle's own.
    min_vehicles: int = 2
    active_within_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.suspect_after_s <= self.lost_after_s:
            raise ValueError("feed: need 0 < suspect_after_s <= lost_after_s")
        if self.grace_s < 0 or self.min_vehicles < 1 or self.active_within_s <= 0:
            raise ValueError("feed: need grace_s >= 0, min_vehicles >= 1, active_within_s > 0")


@dataclass
class SiteFeed:
    """One site's feed as the hub judges it."""

    state: str = OK
    since: float | None = None  # when the state began
    reason: str | None = None  # why it is lost (kept while recovering)
    blind_since: float | None = None  # the last message before, or the transport's drop
    #: Vehicles reporting, and those moving, when the feed was lost: who the operator must
    #: think of first while the hub cannot see them.
    vehicles: list[str] = field(default_factory=list)
    moving: list[tuple[str, float]] = field(default_factory=list)
    newest: float | None = None  # the newest message from the site, at the last evaluation
    active: int = 0  # vehicles reporting within active_within_s, at the last evaluation

    def to_dict(self) -> dict[str, object]:
        return {"state": self.state, "since": self.since, "reason": self.reason,
                "blind_since": self.blind_since, "vehicles": self.vehicles,
                "moving": [{"vehicle": v, "speed_mps": round(s, 1)} for v, s in self.moving]}


def _who(fleet: Fleet, site: str, horizon: float) -> tuple[list[str], list[tuple[str, float]]]:
    """The site's vehicles reporting since ``horizon``, and those of them moving (id, m/s)."""
    vehicles, moving = [], []
    for vehicle in fleet.vehicles.values():
        if vehicle.site != site or not vehicle.serving:
            continue
        times = [t for t in (vehicle.state_rx, *(k.last_rx for k in vehicle.links.values()))
                 if t is not None]
        if not times or max(times) < horizon:
            continue
        vehicles.append(vehicle.id)
        state = vehicle.state
        if state is not None and state.speed_mps >= MOVING_MPS:
            moving.append((vehicle.id, state.speed_mps))
    return sorted(vehicles), sorted(moving)


class FeedWatch:
    """Every site's feed. Never called concurrently: the hub's loop owns it."""

    def __init__(self, settings: FeedSettings | None = None) -> None:
        self.settings = settings or FeedSettings()
        self.sites: dict[str, SiteFeed] = {}
        #: The transport's word: True up, False down, None when there is none to ask (the demo
        #: feed, a replay: only silence can tell there).
        self.transport_up: bool | None = None
        self.transport_down_at: float | None = None

    def set_transport(self, up: bool | None, now: float) -> None:
        if up is False and self.transport_up is not False:
            self.transport_down_at = now
        self.transport_up = up

    def evaluate(self, now: float, fleet: Fleet) -> list[str]:
        """Bring every site's feed up to ``now``; returns the sites whose state changed.

        Runs at every tick over every vehicle, so the steady state only keeps two numbers per
        site (the newest message, the vehicles reporting); who was moving is gathered only
        when a site is lost."""
        s = self.settings
        newest: dict[str, float] = {}
        active: dict[str, int] = {}
        horizon = now - s.active_within_s
        waiting = fleet.newcomers.on_probation
        for vehicle in fleet.vehicles.values():
            if not vehicle.serving:
                continue  # expected to be silent: its silence says nothing of the feed
            if vehicle.id in waiting:
                # Not judged yet (telemetry/newcomers.py): a flood of made-up names on a
                # made-up site, gone quiet, must not declare that site lost.
                continue
            seen = vehicle.state_rx
            for link in vehicle.links.values():
                t = link.last_rx
                if t is not None and (seen is None or t > seen):
                    seen = t
            if seen is None:
                continue
            site = vehicle.site
            if seen > newest.get(site, -1.0):
                newest[site] = seen
            if seen >= horizon:
                active[site] = active.get(site, 0) + 1
        changed = []
        for site, last in newest.items():
            feed = self.sites.get(site)
            if feed is None:
                feed = self.sites[site] = SiteFeed()
            feed.newest = last
            feed.active = active.get(site, 0)
            before = feed.state
            reason = self._lost(now, feed)
            if reason is not None and feed.state != LOST:
                down = self.transport_down_at if self.transport_up is False else last
                if feed.state == OK:  # a relapse while recovering keeps the first account
                    feed.vehicles, feed.moving = _who(fleet, site, horizon)
                feed.state, feed.since, feed.reason, feed.blind_since = LOST, now, reason, down
            elif reason is None and feed.state == LOST:
                feed.state, feed.since = RECOVERING, now
            elif reason is None and feed.state == RECOVERING and now - feed.since >= s.grace_s:
                feed.state, feed.since, feed.reason = OK, now, None
                feed.vehicles, feed.moving, feed.blind_since = [], [], None
            elif reason is not None:
                feed.reason = reason  # still lost: the words follow the facts (down → silent)
            if feed.state != before:
                changed.append(site)
        return changed

    def _lost(self, now: float, feed: SiteFeed) -> str | None:
        """Why the site's feed is lost at ``now``, or None if it is not."""
        s = self.settings
        if self.transport_up is False:
            return "the hub's broker connection is down"
        silent = now - feed.newest if feed.newest is not None else 0.0
        if silent > s.lost_after_s and (feed.state != OK or feed.active >= s.min_vehicles):
            return f"no message from any of its vehicles for {silent:.0f} s"
        return None

    def holds(self, site: str | None, now: float) -> bool:
        """Whether per-vehicle judgements of ``site`` must wait: its feed is not ok, or every
        vehicle has been silent for ``suspect_after_s`` (it may be going blind), or the
        transport is down."""
        if site is None:
            return False
        if self.transport_up is False:
            return True
        feed = self.sites.get(site)
        if feed is None:
            return False
        if feed.state != OK:
            return True
        s = self.settings
        return (feed.newest is not None and feed.active >= s.min_vehicles
                and now - feed.newest > s.suspect_after_s)

    def unseen(self) -> dict[str, str]:
        """Sites the hub cannot see (lost, or recovering within the grace), with why, in words
        for the operator."""
        out = {}
        for site, feed in self.sites.items():
            if feed.state == LOST:
                out[site] = f"the hub cannot see site {site}: {feed.reason}"
            elif feed.state == RECOVERING:
                out[site] = (f"site {site} is back in view; vehicles are judged again once "
                             "they have reported")
        return out

    def view(self) -> dict[str, dict[str, object]]:
        return {site: feed.to_dict() for site, feed in sorted(self.sites.items())}
