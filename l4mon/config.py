"""Hub configuration: TOML validated into plain frozen models before anything runs.

Unknown keys are errors (a typo in a threshold must not silently fall back to a default), and
every error names the key that is wrong.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from handover.settings import HandoverSettings
from l4mon.auth import TokenEntry
from l4mon.ingest.mqtt_settings import MqttSettings
from l4mon.site_watch import FeedSettings
from l4mon.store.journal_location import carries_password, parse_location
from l4mon.timetable import ServiceSettings
from telemetry.fleet import FleetLimits
from telemetry.linkmap.settings import LinkMapSettings
from telemetry.linkstate import LinkThresholds


class ConfigError(ValueError):
    """The config file is unreadable or says something invalid."""


#: A hub's base URL: scheme, host, optional port, no path (a console builds on it).
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65_535:
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)



class HttpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8080"
    #: The largest request body the hub reads (413 past it, before or while reading): the
    #: API's bodies are actions of a few hundred bytes (docs/operations.md, "Threats and
    #: bounds").
    max_body_bytes: int = 16_384
    #: Addresses or networks (``10.0.0.0/8``) of reverse proxies whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` the hub believes. None by default: a client's own header never
    #: moves the address its failed tokens are counted for.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        if self.max_body_bytes <= 0:
            raise ValueError("http: max_body_bytes must be > 0")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"http: trusted_proxies: {proxy!r} is not an IP address or "
                                 "network (a host name is not resolved)") from None


class IngestSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_payload_bytes: int = 16_384
    #: Sender timestamps further than this ahead of / behind the hub's clock are quarantined.
    max_ahead_s: float = 3_600.0
    max_age_s: float = 86_400.0
    quarantine_capacity: int = 1_000
    #: How often the hub ticks: silence becomes ``stale`` and held state changes take effect.
    eval_interval_s: float = 0.25
    #: How often each link's window figures (RTT p95, loss, clock offset) are recomputed.
    judge_interval_s: float = 1.0
    #: How often a quiet vehicle's alert rules run. A vehicle whose link or connectivity state
    #: changed, or that has a pending, clearing or open alert, is evaluated at every tick;
    #: events and no-service reports are evaluated the moment they arrive.
    alert_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_payload_bytes <= 0 or self.quarantine_capacity <= 0:
            raise ValueError("ingest: max_payload_bytes and quarantine_capacity must be > 0")
        if min(self.eval_interval_s, self.judge_interval_s, self.alert_interval_s) <= 0:
            raise ValueError("ingest: eval_interval_s, judge_interval_s and alert_interval_s "
                             "must be > 0")


class AlertSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: Rules file; empty means the shipped default set (l4mon/alerts/default_rules.toml).
    rules: str = ""
    #: The durable journal of alert transitions, duty and generated tokens: an SQLite file
    #: (the default) or a ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`` URL.
    journal: str = "var/l4mon-journal.sqlite"
    #: SQLite's: NORMAL survives a hub crash; FULL also survives power loss (an fsync per
    #: transition). A PostgreSQL commit is always durable.
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: A file holding the PostgreSQL journal's password (first line), so that it is in neither
    #: the URL nor a command line; libpq's own ``PGPASSFILE`` and ``PGPASSWORD`` work too.
    #: Unused by an SQLite journal.
    journal_password_file: str = ""

    def __post_init__(self) -> None:
        try:
            parse_location(self.journal)
        except ValueError as error:
            raise ValueError(f"alerts.journal: {error}") from None
        if self.journal_password_file and carries_password(self.journal):
            raise ValueError("alerts: the journal URL has a password and "
                             "journal_password_file gives another: give it once")


class Requirements(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What each vehicle needs from its links (its camera streams' uplink, for example).

    0 means "no uplink requirement": nothing is judged against it (no alert, no share of time
    met, the report's budget not graded). An import whose throughput is whatever an app happened
    to carry (G-NetTrack) says so, since its uplink says nothing about a camera's.
    """

    ul_required_kbps: float = 8_000.0
    #: Per-vehicle overrides: vehicle id → uplink kbit/s its streams need.
    ul_required_kbps_by_vehicle: dict[str, float] = {}
    #: Share of its time in service a vehicle must have a usable (ok or degraded) link: the
    #: report grades each vehicle against it (0: no requirement). 99 % as TR 22.856's UL
    #: reliability for tele-operated driving: an operator cannot reach a vehicle without a link.
    availability_min: float = 0.99

    def __post_init__(self) -> None:
        if self.ul_required_kbps < 0 or any(v < 0 for v in
                                            self.ul_required_kbps_by_vehicle.values()):
            raise ValueError("requirements: ul_required_kbps must be >= 0 (0: none)")
        if not 0.0 <= self.availability_min <= 1.0:
            raise ValueError("requirements: availability_min must be within 0 … 1 (0: none)")

    def ul_required(self, vehicle: str) -> float:
        return self.ul_required_kbps_by_vehicle.get(vehicle, self.ul_required_kbps)

    def ul_requirement(self, vehicle: str) -> float | None:
        """The vehicle's uplink requirement, or None when it has none (0)."""
        required = self.ul_required(vehicle)
        return required if required > 0 else None


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: With no tokens here (and none in the journal), ``serve`` creates an admin token on its
    #: first start, keeps only its hash in the journal and prints the token once.
    tokens: list[TokenEntry] = []
    #: A client address with this many failed token checks within ``window_s`` gets 429 with
    #: Retry-After until the window closes (0 turns the limit off). Good tokens are not counted.
    max_failures: int = 20
    window_s: float = 60.0
    #: Addresses tracked at once; when full, expired windows and then the oldest are dropped.
    max_tracked_clients: int = 10_000

    def __post_init__(self) -> None:
        if self.max_failures < 0 or self.window_s <= 0 or self.max_tracked_clients <= 0:
            raise ValueError("auth: need max_failures >= 0, window_s > 0 and "
                             "max_tracked_clients > 0")


class ReportSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How much data ``l4mon report`` needs before it grades a vehicle in a condition.

    Below either bound a figure is shown with its sample size but graded "too little data",
    never PASS: a p95 of a few hundred samples is mostly its largest values, and a few
    minutes of a drive say little about a route (docs/reports.md, "Budgets and the verdict").
    """

    #: Drive time (seconds of data, pauses between drives not counted) per vehicle.
    min_drive_s: float = 600.0
    #: Samples behind each per-link figure (answered probes for RTT, sequence-checked samples
    #: for loss, ...): at 300, 15 of them lie beyond a p95.
    min_samples: int = 300

    def __post_init__(self) -> None:
        if self.min_drive_s < 0 or self.min_samples < 1:
            raise ValueError("report: need min_drive_s >= 0 and min_samples >= 1")


class ConsoleSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bounds of the console stream ``/ws``, so one viewer (or one leaked token) cannot grow
    the hub's memory or hold its event loop: docs/operations.md, "Threats and bounds"."""

    #: Console sockets at once, all tokens together; the next handshake gets 503.
    max_connections: int = 500
    #: Console sockets at once per token (by its name); the next handshake gets 429.
    max_connections_per_token: int = 20
    #: Alert frames (and bytes of them) waiting for one console; beyond either it is closed
    #: with 1013 and reconnects with ``last_seq`` (nothing is dropped silently).
    max_queued_frames: int = 1_000
    max_queued_bytes: int = 4_194_304
    #: A send to one console that has not gone out for this long: closed with 1013.
    send_stall_s: float = 10.0
    #: A closing socket whose peer does not take the rest within this long is aborted.
    close_linger_s: float = 2.0
    #: The largest message a console may send (it sends ``{"type": "ping"}``).
    max_message_bytes: int = 4_096
    #: Frames a console may send (messages and WebSocket pings alike): a sustained rate and a
    #: burst; beyond, it is closed with 1008.
    max_frames_per_s: float = 10.0
    frame_burst: int = 30
    #: Bytes the hub holds unsent per socket before a send waits for the peer.
    write_buffer_bytes: int = 65_536
    #: permessage-deflate: smaller state frames for a remote console, at CPU and memory per
    #: socket (docs/operations.md, "Threats and bounds").
    compress: bool = True

    def __post_init__(self) -> None:
        if min(self.max_connections, self.max_connections_per_token, self.max_queued_frames,
               self.max_queued_bytes, self.max_message_bytes, self.frame_burst,
               self.write_buffer_bytes) <= 0:
            raise ValueError("console: connection caps, queue bounds, max_message_bytes, "
                             "frame_burst and write_buffer_bytes must be > 0")
        if min(self.send_stall_s, self.close_linger_s, self.max_frames_per_s) <= 0:
            raise ValueError("console: send_stall_s, close_linger_s and max_frames_per_s "
                             "must be > 0")
        if self.max_connections_per_token > self.max_connections:
            raise ValueError("console: max_connections_per_token must be <= max_connections")


class SiteSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: Site file (intersections, cells, RSUs, routes) for the console's plot; empty for none.
    path: str = ""


class RegisterSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The site register (telemetry/register.py): which ids are vehicles and which RSUs, per
    site. Set, every other id is quarantined (``unregistered``, ``wrong_kind``) and raises
    nothing; empty, unknown vehicles are newcomers (telemetry/newcomers.py)."""

    path: str = ""


class HaSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A hub pair: two ``serve`` on one PostgreSQL journal, one leading (l4mon/leadership.py).
    Leadership is on whenever the journal is PostgreSQL; these say how it behaves."""

    #: This hub's URL as consoles and the other hub reach it (shown by a standby as where to
    #: send actions); empty: ``http://`` + ``[http] listen``.
    url: str = ""
    #: Every hub of the pair, this one included (``["http://a:8080", "http://b:8080"]``):
    #: consoles move to whichever leads, and only these origins may call the API from a page.
    peers: tuple[str, ...] = ()
    #: How often a standby reads the journal (the leader's transitions) and tries for the
    #: leadership lock; the leader checks it still holds the lock as often.
    poll_interval_s: float = 0.2
    #: How long a standby keeps an event's alert it would have raised, to raise it on
    #: promotion if the leader had not (docs/operations.md, "A hub pair").
    defer_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.poll_interval_s <= 5 or self.defer_s <= 0:
            raise ValueError("ha: need 0 < poll_interval_s <= 5 and defer_s > 0")
        for url in (self.url, *self.peers):
            if url and not _HTTP_URL.match(url):
                raise ValueError(f"ha: {url!r} is not an http(s)://HOST[:PORT] URL")

    def own_url(self, listen: str) -> str:
        return self.url or f"http://{listen}"


class CommandSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Commands to vehicles (l4mon/commands/, docs/protocol.md "Commands")."""

    #: The vehicle must answer ``received`` this long after the broker took the command, or
    #: it is "not confirmed" (an urgent alert). 2 s: the worst round trip p99 measured on the
    #: project's 5G traces is 280 ms and a handover burst 323 ms (docs/handover.md), so 2 s
    #: leaves room for a QoS 1 resend; and a link silent for 2 s is judged down anyway
    #: (``[links] probe_silence_s``), so waiting longer would only hide a lost vehicle.
    received_within_s: float = 2.0
    #: ... and ``done`` (or ``refused``) this long after it was issued: a stop from 50 km/h
    #: with the MRM's braking takes under 10 s, pulling over to a safe place longer.
    done_within_s: float = 60.0
    #: How long the hub waits for the broker to acknowledge its QoS 1 publish.
    publish_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.received_within_s <= self.done_within_s <= 3_600) \
                or not 0 < self.publish_timeout_s <= 30:
            raise ValueError("commands: need 0 < received_within_s <= done_within_s <= 3600 "
                             "and 0 < publish_timeout_s <= 30")


class HubConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    links: LinkThresholds = LinkThresholds()
    fleet: FleetLimits = FleetLimits()
    handover: HandoverSettings = HandoverSettings()
    alerts: AlertSettings = AlertSettings()
    requirements: Requirements = Requirements()
    report: ReportSettings = ReportSettings()
    auth: AuthSettings = AuthSettings()
    console: ConsoleSettings = ConsoleSettings()
    site: SiteSettings = SiteSettings()
    register: RegisterSettings = RegisterSettings()
    feed: FeedSettings = FeedSettings()
    ha: HaSettings = HaSettings()
    linkmap: LinkMapSettings = LinkMapSettings()
    #: Which vehicle is expected in service when (optional; l4mon/timetable.py).
    service: ServiceSettings = ServiceSettings()
    commands: CommandSettings = CommandSettings()

    def __post_init__(self) -> None:
        mqtt = self.mqtt
        if mqtt.command_connection and mqtt.cert_file and not mqtt.command_cert_file:
            # A broker that names a client by its certificate (deploy/mosquitto) would give
            # both connections one client id, and each would take the other's session.
            raise ValueError("mqtt: with a client certificate (cert_file) the command "
                             "connection needs one of its own, named as its client id "
                             "(command_cert_file/command_key_file, e.g. "
                             f"{mqtt.command_client_id or mqtt.client_id + '-commands'}.crt), "
                             "or command_connection = false")


def _merged(defaults: dict, given: dict) -> dict:
    """``given`` over ``defaults``, table by table: a partial table keeps the other defaults."""
    out = dict(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(data: dict) -> HubConfig:
    """Validate ``data`` laid over the defaults (so one threshold can be changed alone)."""
    try:
        return msgspec.convert(_merged(msgspec.to_builtins(HubConfig()), data), HubConfig)
    except (msgspec.ValidationError, ValueError) as error:
        raise ConfigError(str(error)) from None


def load_config(path: str | Path | None) -> HubConfig:
    """The config at ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return HubConfig()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    try:
        return config_from_dict(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def with_overrides(config: HubConfig, *, broker: str | None = None, http: str | None = None,
                   mqtt_client: str | None = None, journal: str | None = None) -> HubConfig:
    """Command-line flags win over the file."""
    data = msgspec.to_builtins(config)
    if journal is not None:
        data["alerts"]["journal"] = journal
    if broker is not None:
        data["mqtt"]["url"] = broker
    if mqtt_client is not None:
        data["mqtt"]["client"] = mqtt_client
    if http is not None:
        data["http"]["listen"] = http
    return config_from_dict(data)
