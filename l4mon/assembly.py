"""Putting a hub together from its config: journal, rules, duty, engine, tokens, site.

``serve``, ``demo`` and replay all assemble the hub through ``build_hub``, so the demo and a
replay run the real thing; the live ones add a ``Runtime`` (``build_runtime``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from l4mon.alerts.rules import Rule, load_rules
from l4mon.auth import TokenStore, hash_token, new_token
from l4mon.clock import Clock
from l4mon.config import HubConfig
from l4mon.hub import Hub
from l4mon.leadership import Leadership
from l4mon.runtime import LiveParts, Runtime
from l4mon.store.journal import Journal, open_journal, parse_location
from l4mon.timetable import Timetable
from telemetry.fleet import Refused, RsuTrack
from telemetry.link import SampleObserver
from telemetry.linkmap.outlook import LookAhead
from telemetry.register import load_register
from telemetry.site import Site, load_site

if TYPE_CHECKING:
    from l4mon.demo import DemoFleet
    from l4mon.ingest.buffer import BatchBuffer
    from l4mon.ingest.mqtt_status import MqttStatus
    from l4mon.ingest.publisher import Publisher
    from l4mon.recorder import Recorder

log = logging.getLogger("l4mon")


def build_hub(config: HubConfig, *, site: Site | None = None,
              rules: list[Rule] | None = None,
              observe_link: Callable[[str, str], SampleObserver] | None = None) -> Hub:
    """The hub with its journal and alert engine: what live and replay both run. Raises
    ValueError subclasses on bad rules, site or journal location, JournalError when the
    journal cannot be opened.

    A ``[linkmap] path`` is loaded here (LinkMapError, a ValueError, when unreadable).

    ``rules`` replaces the config's rules file (a replay of a recording uses the rules the
    recording hub ran with); ``observe_link`` gives each new link a replay's books."""
    if rules is None:
        rules = load_rules(config.alerts.rules or None)
    if site is None and config.site.path:
        site = load_site(config.site.path)
    # Before the journal opens: a bad register stops the start with nothing to close.
    register = load_register(config.register.path) if config.register.path else None
    timetable = Timetable(config.service)
    lookahead = None
    if config.linkmap.path:
        def rsus() -> Iterable[RsuTrack]:
            # Their weather, asked at each look (the hub below exists by then): a session's
            # end replaces the fleet's RSU table, so it is not kept.
            return hub.fleet.rsus.values()

        lookahead = LookAhead.load(config.linkmap, site=site, rsus=rsus,
                                   degraded=config.links.degraded)
        log.info("link map %s: %d rows, %d drives; looking %g s ahead",
                 config.linkmap.path, len(lookahead.linkmap.rows),
                 len(lookahead.linkmap.drives), config.linkmap.horizon_s)
    journal = open_journal(config.alerts.journal, synchronous=config.alerts.synchronous,
                           password_file=config.alerts.journal_password_file)
    hub = Hub(config=config, site=site, register=register, store=journal, rules=rules,
              planned=timetable.planned if timetable else None, lookahead=lookahead,
              observe_link=observe_link)
    if hub.alerts.open:
        log.info("journal %s: restored %d open alerts", journal.location, len(hub.alerts.open))
    for planned in timetable.vehicles():  # expected: known, and missed, before it is heard
        where = planned.site or (site.name if site is not None else None)
        if where is None:
            raise ValueError(f"service.timetable: vehicle {planned.vehicle} needs a site "
                             "(site = ...), the hub has no site plan to take it from")
        try:
            hub.fleet.expect(planned.vehicle, where)
        except Refused as refused:
            raise ValueError(f"service.timetable: vehicle {planned.vehicle}: "
                             f"{refused.detail}") from None
    return hub


def build_leadership(config: HubConfig, hub: Hub, *, clock: Clock) -> Leadership | None:
    """With a PostgreSQL journal, the hub is one of a pair (or a pair of one) and leads only
    while it holds the journal's leadership lock (l4mon/leadership.py); with SQLite it is a
    single hub that always decides: None. Live only: replay never asks."""
    if parse_location(config.alerts.journal).kind != "postgresql":
        return None
    from l4mon.store.postgres_journal import PostgresJournal

    journal = hub.store
    if not isinstance(journal, PostgresJournal):
        return None
    return Leadership(hub=hub, lock=journal, clock=clock, settings=config.ha,
                      url=config.ha.own_url(config.http.listen),
                      client_id=config.mqtt.client_id)


def build_runtime(config: HubConfig, *, clock: Clock, hub: Hub | None = None,
                  site: Site | None = None, demo: DemoFleet | None = None,
                  rules: list[Rule] | None = None, buffer: BatchBuffer | None = None,
                  mqtt: MqttStatus | None = None, recorder: Recorder | None = None,
                  ha: Leadership | None = None, publisher: Publisher | None = None) -> Runtime:
    """The live hub's runtime: ``hub`` (or one built from the config), its tokens, and what
    the transport and recorder report. With a ``publisher`` (the MQTT connection, or the
    demo's fleet), operators can send the vehicles commands. The live process itself:
    l4mon/process.py."""
    if hub is None:
        hub = build_hub(config, site=site, rules=rules)
    site = hub.site
    journal = hub.store
    resume_service(hub, journal, clock.now())
    if mqtt is not None:  # the hub and sender rules read it
        hub.alerts.transport = mqtt
    tokens = TokenStore([(t.name, t.role, t.sha256) for t in config.auth.tokens],
                        journal=journal)
    commands = None
    if publisher is not None:
        from l4mon.commands.service import CommandService

        commands = CommandService(journal=hub.store, fleet=hub.fleet, alerts=hub.alerts,
                                  publisher=publisher, quarantine=hub.quarantine,
                                  clock=clock.now, settings=config.commands,
                                  unseen=hub.feed.unseen)
    return Runtime(hub=hub, clock=clock, tokens=tokens, parts=LiveParts(
        site=site, demo=demo, buffer=buffer, mqtt=mqtt, recorder=recorder, ha=ha,
        peers=config.ha.peers, commands=commands))


def resume_service(hub: Hub, journal: Journal, now: float) -> None:
    """Each vehicle's service as the journal kept it (docs/alerts.md, "Service"): live only,
    a replay starts from its log."""
    resumed = [hub.fleet.resume_service(s["vehicle"], s["site"], s["status"], s["at"],
                                        s["reason"], now)
               for s in journal.service_states()]
    if resumed:
        log.info("journal %s: resumed the service of %d vehicles (%d in service)",
                 journal.location, len(resumed),
                 sum(1 for v in resumed if v is not None and v.service == "in_service"))


def ensure_admin_token(runtime: Runtime) -> str | None:
    """With no token in force anywhere, create an admin token, keep its hash, return it
    (shown once). A revoked ``admin`` row is given the new token."""
    if len(runtime.tokens):
        return None
    engine = runtime.hub.alerts
    token = new_token()
    now = runtime.clock.now()
    engine.journal.add_token("admin", "admin", hash_token(token), now)
    runtime.tokens.refresh(now)
    return token
