"""Publisher identity: refuse a message whose topic names another vehicle than its sender.

MQTT itself does not tell a subscriber who published a message. Where the broker can say it,
it says it in an MQTT v5 user property (``[mqtt] identity_property``, default ``l4mon-client``)
stamped on every PUBLISH from the authenticated username or certificate name: a broker plugin
(Mosquitto's message event), an EMQX rule or a HiveMQ extension. Mosquitto 2.0 on its own
cannot stamp anything; there the per-vehicle ACL (deploy/mosquitto/) is the enforcement and
this check stays off.

The hub can only trust the property if the broker removes any value a publisher set itself, so
the check fails closed: the property must be present exactly once and equal the topic's vehicle
or RSU id. A topic that is not a v1 topic is passed on for the hub to refuse as
``unknown_topic``. This runs only when ``require_identity`` is on; off, the transport delivers
without looking at properties at all.

A QoS 1 message's ``then`` (its PUBACK) goes with a delivered message to the buffer, which runs
it once the hub has processed it; a refused message is done with once it is quarantined, so its
``then`` runs at once: the broker must not send it again, it would only be refused again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from l4mon.clock import Clock
from l4mon.types import Delivery
from telemetry.decode import IDENTITY_MISMATCH
from telemetry.quarantine import Quarantine
from telemetry.topics import TopicCache

if TYPE_CHECKING:
    from l4mon.ingest.delivery import Deliver


class IdentityCheck:
    """Delivers a message whose identity matches its topic; quarantines any other."""

    __slots__ = ("_clock", "_deliver", "_quarantine", "_topics", "property", "refused")

    def __init__(self, *, deliver: Deliver, quarantine: Quarantine,
                 clock: Clock, property_name: str) -> None:
        self._deliver = deliver
        self._quarantine = quarantine
        self._clock = clock
        self._topics = TopicCache()
        self.property = property_name
        self.refused = 0

    def __call__(self, delivery: Delivery, user_properties: Sequence[tuple[str, str]],
                 then: Callable[[], None] | None = None, /) -> None:
        """``user_properties``: the PUBLISH's (name, value) pairs, in order, repeats kept."""
        topic = delivery[0]
        route = self._topics.get(topic)
        if route is None:
            self._deliver(delivery, then)
            return
        claimed = [value for name, value in user_properties if name == self.property]
        if claimed == [route.source]:
            self._deliver(delivery, then)
            return
        if not claimed:
            detail = f"no {self.property!r} user property: the sender is unknown"
        elif len(claimed) > 1:
            detail = f"{len(claimed)} {self.property!r} user properties: ambiguous sender"
        else:
            detail = f"sent by {claimed[0][:64]!r}, topic is {route.source!r}'s"
        self.refused += 1
        self._quarantine.add(received_at=self._clock.now(), topic=topic, payload=delivery[1],
                             reason=IDENTITY_MISMATCH, detail=detail)
        if then is not None:
            then()
