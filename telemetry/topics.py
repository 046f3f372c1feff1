"""Topic names of protocol v1: where a message came from and what it claims to be."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from telemetry.wire import PROTOCOL_VERSION

PREFIX: Final = f"l4mon/{PROTOCOL_VERSION}"
#: What the hub subscribes to; one filter per stream family keeps shared subscriptions simple.
SUBSCRIPTIONS: Final = (f"{PREFIX}/+/vehicle/#", f"{PREFIX}/+/rsu/#")

#: What a site, vehicle, RSU or link name may be made of: printable ASCII without separators or
#: wildcards, so no name can carry a right-to-left override, a control character or a newline
#: into a log line, a console row or a metric label. ``fullmatch``: ``$`` would let a trailing
#: newline through.
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: ... and at least one letter or digit: ``.`` and ``..`` are path steps, not names, wherever
#: an id ends up in a path or a URL.
_ALNUM = re.compile(r"[A-Za-z0-9]")


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


def valid_name(name: str) -> bool:
    """Whether ``name`` may be a site, vehicle, RSU or link name (docs/protocol.md)."""
    return _NAME.fullmatch(name) is not None and _ALNUM.search(name) is not None


def _shape(topic: str) -> tuple[Route, tuple[str, ...]] | None:
    """The route a topic's shape says, with its names unchecked, and those names."""
    parts = topic.split("/")
    n = len(parts)
    if n < 6 or parts[0] != "l4mon" or parts[1] != PROTOCOL_VERSION:
        return None
    site, family, source = parts[2], parts[3], parts[4]
    if family == "vehicle":
        if n == 6 and parts[5] in ("state", "event", "service"):
            return Route(parts[5], site, source), (site, source)
        if n == 7 and parts[5] == "link":
            return Route("link", site, source, parts[6]), (site, source, parts[6])
    elif family == "rsu" and n == 6 and parts[5] == "status":
        return Route("rsu", site, source), (site, source)
    return None


def parse_topic(topic: str) -> Route | None:
    """Return the route of a v1 topic, or ``None`` for any other shape or a bad name.

    Names are checked here, once per topic, so a topic cannot smuggle separators, wildcards,
    path steps, control or bidirectional characters or unbounded strings into the state
    tables, the console and the metric labels. ``topic_fault`` says which it was.
    """
    shaped = _shape(topic)
    if shaped is None or not all(valid_name(name) for name in shaped[1]):
        return None
    return shaped[0]


def topic_fault(topic: str) -> tuple[bool, str]:
    """Why ``parse_topic`` refused ``topic``: (True, which name) when the shape is v1 but a
    name is not allowed, (False, why) when it is no v1 topic at all. Names are shown as
    ``ascii()`` escapes: a right-to-left override must not reorder the operator's screen."""
    shaped = _shape(topic)
    if shaped is None:
        return False, "not an l4mon/v1 topic"
    route, names = shaped
    roles = ("site", "RSU" if route.kind == "rsu" else "vehicle", "link")
    for role, name in zip(roles, names, strict=False):
        if not valid_name(name):
            return True, (f"{role} name {name[:80]!a} is not allowed: 1 to 64 of "
                          "A-Z a-z 0-9 _ . : -, at least one letter or digit")
    return False, "not an l4mon/v1 topic"


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
