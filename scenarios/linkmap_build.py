"""Building a link map from drive logs (``l4mon linkmap build``).

Each log is replayed through the live pipeline (``scenarios.replay.run``: ``Hub.ingest`` and
``Hub.tick`` under the log's own clock, with the config, rules and site it was recorded
with), so a cell's share of time degraded or down is the hub's own link-state verdict at
each 0.25 s tick, exactly what an operator would have seen there, not a second opinion
computed from raw columns. A ``MapWatcher`` places what the replay sees on the grid:

* every link sample (RTT, RSRP, SINR, uplink) at the vehicle's last reported position;
* every tick: each link's state, time in it, passes (a vehicle-link entering the cell),
  outage and degradation starts (the state turning down/stale, or ok → degraded);
* every final handover record, at its own position.

A position older than ``POSITION_MAX_AGE_S`` places nothing: what happens while the vehicle
does not say where it is, is counted as unplaced (in the build report), not guessed.

Memory: the replay streams the log (bounded by batch size); the map by its rows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from scenarios import replay
from scenarios.scenario import prepare
from telemetry.drivelog import DriveLogError, read_manifest
from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import DEFAULT_CELL_M, MAX_CELL_M, MIN_CELL_M, CellIndex, Grid
from telemetry.linkmap.model import Drive, LinkMap, LinkMapError, drive_id
from telemetry.linkstate import DEGRADED, DOWN, OK, STALE
from telemetry.sessions import SESSION_GAP_S
from telemetry.wire import LinkSample

if TYPE_CHECKING:
    from handover.book import HandoverEntry
    from l4mon.hub import Hub
    from telemetry.vehicle import VehicleTrack

#: A position older than this places nothing (3 s: three G-NetTrack rows, 25 m at 30 km/h).
POSITION_MAX_AGE_S: Final = 3.0
_UNUSABLE: Final = (DOWN, STALE)
_USABLE: Final = (OK, DEGRADED)


def event_of(before: str, now: str) -> str | None:
    """``outage`` when a link that carried (ok/degraded) became down or stale,
    ``degradation`` when an ok link became degraded; None otherwise."""
    if before in _USABLE and now in _UNUSABLE:
        return "outage"
    if before == OK and now == DEGRADED:
        return "degradation"
    return None


@dataclass
class BuildReport:
    """What a build did, for the command's output."""

    logs: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # drive ids
    skipped: list[str] = field(default_factory=list)  # already in the map
    samples_placed: int = 0
    samples_unplaced: int = 0
    unplaced_s: float = 0.0  # vehicle-seconds of ticks without a fresh position
    events_unplaced: int = 0
    handovers_placed: int = 0
    handovers_unplaced: int = 0

    def lines(self) -> list[str]:
        out = [f"{len(self.logs)} log(s): {len(self.added)} drive(s) added"
               + (f", {len(self.skipped)} already in the map (not counted again)"
                  if self.skipped else "")]
        out.append(f"samples placed {self.samples_placed}, without a fresh position "
                   f"{self.samples_unplaced}; ticks without one {self.unplaced_s:.1f} "
                   f"vehicle-s; handovers placed {self.handovers_placed}, unplaced "
                   f"{self.handovers_unplaced}")
        return out


@dataclass(slots=True)
class _Trace:
    """One (drive, link) between ticks: the cell it was last in and the pass's flags."""

    cell: CellIndex | None = None
    state: str = "unknown"
    flags: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Drive:
    index: int
    id: str
    vehicle: str
    start: float
    last: float
    skip: bool
    samples: int = 0
    traces: dict[str, _Trace] = field(default_factory=dict)


class MapBuilder:
    """Drives of several logs into one new map (on ``grid``, or one made at the first
    position); drives whose id is in ``known`` are skipped."""

    def __init__(self, *, cell_m: float = DEFAULT_CELL_M, grid: Grid | None = None,
                 known: Iterable[str] = (), max_rows: int | None = None) -> None:
        self.cell_m = grid.cell_m if grid is not None else cell_m
        if not MIN_CELL_M <= self.cell_m <= MAX_CELL_M:
            raise LinkMapError(f"cell size must be {MIN_CELL_M:g}..{MAX_CELL_M:g} m, "
                               f"got {self.cell_m:g}")
        self.grid = grid
        self.max_rows = max_rows
        self.linkmap: LinkMap | None = None if grid is None else self._new_map(grid)
        self.known = set(known)
        self.drives: list[Drive] = []
        self.report = BuildReport()
        self._index = 0

    def _new_map(self, grid: Grid) -> LinkMap:
        return LinkMap(grid) if self.max_rows is None else LinkMap(grid, max_rows=self.max_rows)

    def place(self, lat: float, lon: float, origin: tuple[float, float] | None) -> CellIndex:
        """The cell of a position, making the grid at the first one (``origin``: the site's)."""
        if self.grid is None:
            self.grid = Grid(origin[0], origin[1], self.cell_m) if origin is not None \
                else Grid.around(lat, lon, self.cell_m)
            self.linkmap = self._new_map(self.grid)
        return self.grid.cell(lat, lon)

    def new_drive(self, vehicle: str, at: float) -> _Drive:
        ident = drive_id(vehicle, at)
        skip = ident in self.known
        (self.report.skipped if skip else self.report.added).append(ident)
        self.known.add(ident)  # the same log given twice counts once
        self._index += 1
        return _Drive(index=self._index, id=ident, vehicle=vehicle, start=at, last=at,
                      skip=skip)

    def add_log(self, path: str | Path) -> None:
        """Replay one drive log through the hub and place what it saw."""
        path = Path(path)
        if not path.exists():
            raise LinkMapError(f"{path}: no such drive log")
        if not path.is_dir():
            raise LinkMapError(f"{path}: not a drive log (a directory with manifest.json); "
                               "a raw trace must be imported first (l4mon import), and replay "
                               "results hold no per-sample positions: give the log replayed")
        manifest = read_manifest(path)  # DriveLogError for a directory that is no log
        prepared = prepare(path)
        site = prepared.site
        watcher = MapWatcher(self, log=str(path), source=str(manifest.source.get("kind", "")),
                             site=manifest.site, weather=manifest.conditions.weather,
                             light=manifest.conditions.light,
                             origin=(site.origin.lat, site.origin.lon) if site else None)
        try:
            outcome = replay.run(prepared.stream, config=prepared.config, site=site,
                                 rules=prepared.rules,
                                 not_measured=prepared.info.get("not_measured", ()),
                                 watcher=watcher)
        except ValueError as error:
            if "nothing to replay" in str(error):
                raise LinkMapError(f"{path}: the drive log holds no messages") from None
            raise
        watcher.handovers(outcome.handovers)
        self.drives += watcher.finish()
        self.report.logs.append(str(path))

    def result(self) -> LinkMap:
        if self.linkmap is None:
            raise LinkMapError("no log held a vehicle position: a link map needs positions")
        for drive in self.drives:
            self.linkmap.drives[drive.id] = drive
        return self.linkmap


class MapWatcher:
    """The replay's watcher for one log (``scenarios.replay.Watcher``)."""

    def __init__(self, builder: MapBuilder, *, log: str, source: str, site: str, weather: str,
                 light: str, origin: tuple[float, float] | None) -> None:
        self.builder = builder
        self.report = builder.report
        self.log, self.source, self.site = log, source, site
        self.weather, self.light = weather, light
        self.origin = origin
        self.hub: Hub | None = None
        self.current: dict[str, _Drive] = {}
        self.all: dict[str, list[_Drive]] = {}

    def attach(self, hub: Hub) -> None:
        self.hub = hub

    # -- placing ------------------------------------------------------------------------------

    def _cell(self, vehicle: VehicleTrack | None, now: float) -> CellIndex | None:
        if vehicle is None or vehicle.state is None or vehicle.state_rx is None \
                or now - vehicle.state_rx > POSITION_MAX_AGE_S:
            return None
        return self.builder.place(vehicle.state.lat, vehicle.state.lon, self.origin)

    def _row(self, cell: CellIndex, link: str, drive: _Drive) -> CellStats:
        assert self.builder.linkmap is not None  # made with the grid at the first position
        row = self.builder.linkmap.row(cell, link, self.weather, self.light)
        row.drive_seen.add(drive.index)
        return row

    def _drive(self, vehicle: str, now: float) -> _Drive:
        drive = self.current.get(vehicle)
        if drive is None or now - drive.last > SESSION_GAP_S:
            drive = self.current[vehicle] = self.builder.new_drive(vehicle, now)
            self.all.setdefault(vehicle, []).append(drive)
        drive.last = max(drive.last, now)
        return drive

    # -- what the replay sees -----------------------------------------------------------------

    def sample(self, vehicle: str, link: str, msg: LinkSample, now: float) -> None:
        drive = self._drive(vehicle, now)
        if drive.skip:
            return
        drive.samples += 1
        assert self.hub is not None
        track = self.hub.fleet.vehicles.get(vehicle)
        cell = self._cell(track, now)
        if cell is None:
            self.report.samples_unplaced += 1
            return
        self.report.samples_placed += 1
        row = self._row(cell, link, drive)
        row.samples += 1
        if msg.rtt_ms is not None:
            row.probes += 1
            row.rtt.add(msg.rtt_ms)
        elif msg.probe:
            row.probes += 1
            row.probe_timeouts += 1
        if msg.rat != "none":
            if msg.rsrp_dbm is not None:
                row.rsrp.add(msg.rsrp_dbm)
            if msg.sinr_db is not None:
                row.sinr.add(msg.sinr_db)
        if msg.ul_kbps is not None and track is not None:
            own = track.links.get(link)
            if own is not None and own.health.state in _USABLE:  # what could be counted on
                row.ul.add(msg.ul_kbps)

    def tick(self, now: float, interval: float) -> None:
        hub = self.hub
        assert hub is not None
        requirements = hub.config.requirements
        max_ul_age = hub.config.links.window_s
        for vid, vehicle in hub.fleet.vehicles.items():
            drive = self.current.get(vid)
            if drive is None or drive.skip or not vehicle.links \
                    or now - drive.last > SESSION_GAP_S:
                continue
            cell = self._cell(vehicle, now)
            if cell is None:
                self.report.unplaced_s += interval
            need = requirements.ul_requirement(vid)
            # What the vehicle's camera streams ride on: every usable link together.
            usable = vehicle.ul_kbps_usable(now, max_ul_age) if need is not None else None
            short = usable is not None and need is not None and usable < need
            for name, link in vehicle.links.items():
                state = link.health.state
                trace = drive.traces.get(name)
                if trace is None:
                    trace = drive.traces[name] = _Trace()
                event = event_of(trace.state, state)
                trace.state = state
                if cell is None:
                    self.report.events_unplaced += event is not None
                    continue
                row = self._row(cell, name, drive)
                row.add_time(state, interval)
                if trace.cell != cell:
                    row.passes += 1
                    trace.cell = cell
                    trace.flags = set()
                flags = trace.flags
                if state == DEGRADED:
                    _flag(row, flags, "passes_degraded")
                if state in _UNUSABLE:
                    _flag(row, flags, "passes_down")
                    _flag(row, flags, "passes_unfit")
                if state in (DEGRADED, *_UNUSABLE):
                    _flag(row, flags, "passes_impaired")
                if event == "outage":
                    row.outage_starts += 1
                elif event == "degradation":
                    row.degradation_starts += 1
                if need is not None and state in _USABLE and link.ul_at is not None \
                        and now - link.ul_at <= max_ul_age:
                    row.time_ul_judged_s += interval
                    if link.ul_kbps_last < need:  # this link alone would not carry it
                        row.time_ul_short_s += interval
                        _flag(row, flags, "passes_ul_short")
                if short and state in _USABLE:  # relied on, and together not enough
                    _flag(row, flags, "passes_unfit")
                    # Short of uplink costs the operator the picture as surely as a
                    # degraded link does: impaired counts it too (map v4).
                    _flag(row, flags, "passes_impaired")

    def handovers(self, entries: Sequence[HandoverEntry]) -> None:
        """Every final record of the replay, at its own position, in its drive."""
        for entry in entries:
            record = entry.record
            drive = self._drive_at(entry.vehicle, record.at)
            if drive is None or drive.skip:
                continue
            if record.lat is None or record.lon is None:
                self.report.handovers_unplaced += 1
                continue
            self.report.handovers_placed += 1
            row = self._row(self.builder.place(record.lat, record.lon, self.origin),
                            entry.link, drive)
            if record.kind == "failure":
                row.failures += 1
            else:
                row.handovers += 1
                row.ping_pongs += record.kind == "ping_pong"
                row.too_frequent += record.kind == "too_frequent"
            row.add_pair(record.from_cell, record.to_cell)

    def _drive_at(self, vehicle: str, at: float) -> _Drive | None:
        drives = self.all.get(vehicle, [])
        i = bisect_right([d.start for d in drives], at) - 1
        return drives[max(i, 0)] if drives else None

    def finish(self) -> list[Drive]:
        return [Drive(id=d.id, vehicle=d.vehicle, log=self.log, source=self.source,
                      site=self.site, weather=self.weather, light=self.light, start=d.start,
                      end=d.last, samples=d.samples)
                for drives in self.all.values() for d in drives if not d.skip]


def _flag(row: CellStats, flags: set[str], counter: str) -> None:
    """Count ``counter`` once per pass."""
    if counter not in flags:
        flags.add(counter)
        setattr(row, counter, getattr(row, counter) + 1)


def build_map(logs: Sequence[str | Path], *, cell_m: float = DEFAULT_CELL_M,
              base: LinkMap | None = None,
              progress: Callable[[float], None] | None = None) -> tuple[LinkMap, BuildReport]:
    """A map of ``logs``; with ``base``, ``base`` with the logs' new drives merged in (on its
    grid; drives it already holds are skipped, never counted twice)."""
    if not logs:
        raise LinkMapError("no drive logs given")
    builder = MapBuilder(cell_m=cell_m, grid=base.grid if base is not None else None,
                         known=base.drives if base is not None else ())
    for done, log in enumerate(logs, start=1):
        try:
            builder.add_log(log)
        except DriveLogError as error:
            raise LinkMapError(str(error)) from None
        if progress is not None:
            progress(done)
    if base is None:
        return builder.result(), builder.report
    if builder.linkmap is not None:
        base.merge(builder.result())
    return base, builder.report
