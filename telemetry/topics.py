"""Topic names of protocol v1: where a message came from and what it claims to be."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from telemetry.wire import PROTOCOL_VERSION

PREFIX: Final = f"l4mon/{PROTOCOL_VERSION}"
#: What the hub subscribes to; one filter per stream family keeps shared subscriptions simple.
SUBSCRIPTIONS: Final = (f"{PREFIX}/+/vehicle/#", f"{PREFIX}/+/rsu/#")

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class Route(NamedTuple):
    """A parsed topic. ``link`` is only set for link samples."""

    kind: str  # "state" | "link" | "event" | "service" | "rsu"
    site: str
    source: str  # vehicle id, or RSU id for kind "rsu"
    link: str | None = None


def state_topic(site: str, vehicle: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/state"


def link_topic(site: str, vehicle: str, link: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/link/{link}"


def event_topic(site: str, vehicle: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/event"


def service_topic(site: str, vehicle: str) -> str:
    return f"{PREFIX}/{site}/vehicle/{vehicle}/service"


def rsu_topic(site: str, rsu: str) -> str:
    return f"{PREFIX}/{site}/rsu/{rsu}/status"


def parse_topic(topic: str) -> Route | None:
    """Return the route of a v1 topic, or ``None`` for any other shape.

    Names are checked against the same pattern the wire model uses, so a topic cannot smuggle
    separators, wildcards or unbounded strings into the state tables and metric labels.
    """
    parts = topic.split("/")
    n = len(parts)
    if n < 6 or parts[0] != "l4mon" or parts[1] != PROTOCOL_VERSION:
        return None
    site, family, source = parts[2], parts[3], parts[4]
    if not (_NAME.match(site) and _NAME.match(source)):
        return None
    if family == "vehicle":
        if n == 6 and parts[5] in ("state", "event", "service"):
            return Route(parts[5], site, source)
        if n == 7 and parts[5] == "link" and _NAME.match(parts[6]):
            return Route("link", site, source, parts[6])
    elif family == "rsu" and n == 6 and parts[5] == "status":
        return Route("rsu", site, source)
    return None


class TopicCache:
    """Memoises ``parse_topic``: a fleet reuses a few thousand topics millions of times.

    Bounded: when full it is emptied rather than evicting one by one, which keeps the hot path
    to a single dict lookup and still caps memory against a flood of made-up topics.
    """

    __slots__ = ("_routes", "_limit")

    def __init__(self, *, limit: int = 65_536) -> None:
        self._routes: dict[str, Route | None] = {}
        self._limit = limit

    def get(self, topic: str) -> Route | None:
        try:
            return self._routes[topic]
        except KeyError:
            route = parse_topic(topic)
            if len(self._routes) >= self._limit:
                self._routes.clear()
            self._routes[topic] = route
            return route
