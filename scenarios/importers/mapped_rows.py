"""A mapped file's rows into messages: each kept row one link sample of its vehicle's link,
and a vehicle state where the row has a position.

Which vehicle and link a row is comes from the mapping (a column, the file's band, or a fixed
name) or the command line; each (vehicle, link) is its own stream, numbered (``seq``) by its
own rows, so neighbour rows filtered out of a long export and other modems' rows are no gaps.
A version 1 mapping reads exactly as it always did: one stream, ``seq`` the data row's index,
a row without position or speed skipped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from scenarios.importers import (
    DriveLogImportError,
    Entry,
    FileReport,
    RowSkip,
    count_changes,
    link_sample,
    wire,
)
from scenarios.importers.cicv5g import band, utm_to_latlon
from scenarios.importers.gnettrack import HEADING_MIN_M, track_bearing
from scenarios.importers.mapped_checks import check_backwards, check_delays, track_speeds
from scenarios.importers.mapped_columns import RowValues
from scenarios.importers.mapped_spec import NAME, Mapping
from telemetry.ranges import Screened
from telemetry.topics import Route
from telemetry.wire import VehicleState

_MAX_EPOCH_S: Final = 4_102_444_800.0
_MS: Final = {"ms": 1.0, "s": 1000.0, "us": 0.001}
_KBPS: Final = {"kbps": 1.0, "bps": 0.001, "Mbps": 1000.0}


@dataclass
class _Pending:
    """A vehicle state whose speed comes from the track, built once the track is known."""

    at: int  # its place in the vehicle's entries
    recv: float
    fields: dict[str, Any]


@dataclass
class VehicleRun:
    """One vehicle's share of the file."""

    report: FileReport
    entries: list[Entry | _Pending] = field(default_factory=list)
    cells: dict[str, list[str | None]] = field(default_factory=dict)
    anchor: tuple[float, float] | None = None
    heading: float = 0.0
    states: int = 0
    last_state: float | None = None
    last_state_link: str | None = None
    points: list[tuple[float, float, float]] = field(default_factory=list)  # (t, lat, lon)


class FileRows:
    """Reads one file's split rows into per-vehicle runs."""

    def __init__(self, mapping: Mapping, path: Path, values: RowValues, *, vehicle: str,
                 site: str, stamp: Callable[[str], float | None]) -> None:
        self.m = mapping
        self.path = path
        self.values = values
        self.vehicle = vehicle
        self.site = site
        self.stamp = stamp
        self.runs: dict[str, VehicleRun] = {}
        self.seqs: Counter[tuple[str, str]] = Counter()
        self.rtts: list[float] = []
        self.delays: list[float] = []
        self.orphans: Counter[str] = Counter()  # skipped before the row's vehicle was known
        k = mapping.spec.link
        self.fixed_link = None if k.name_column else self._link_of_file()
        self.probe_columns = list(k.probe_columns if k.probe_columns is not None
                                  else ([k.rtt] if k.rtt and not k.every_row_is_a_probe
                                        else []))

    # --- whose row --------------------------------------------------------------------------

    def _link_of_file(self) -> str:
        k = self.m.spec.link
        if not k.from_band:
            return k.name
        number = band(self.path)
        return self.m.band_links.get(number, k.name) if number is not None else k.name

    def _vehicle_of(self, fields: list[str]) -> str:
        column = self.m.spec.vehicle_column
        if column is None:
            return self.vehicle
        return _wire_name(self.values.require(fields, column, "vehicle"))

    def _link_of(self, fields: list[str]) -> str:
        if self.fixed_link is not None:
            return self.fixed_link
        k = self.m.spec.link
        assert k.name_column is not None
        value = self.values.require(fields, k.name_column, "link")
        return k.names.get(value) or _wire_name(value)

    def run(self, vehicle: str) -> VehicleRun:
        if vehicle not in self.runs:
            self.runs[vehicle] = VehicleRun(FileReport(path=self.path, vehicle=vehicle,
                                                       links=[]))
        return self.runs[vehicle]

    # --- one row ----------------------------------------------------------------------------

    def row(self, fields: list[str] | None, width: int, recv: float | None) -> None:
        """One data row: kept into its vehicle's run, or skipped with its reason counted."""
        fixed = self.m.spec.vehicle_column is None and self.fixed_link is not None
        owner: VehicleRun | None = None
        try:
            if fixed:
                owner = self.run(self.vehicle)
            if fields is None or len(fields) < width:
                if fixed:  # one stream: its unreadable rows are gaps in it, as in version 1
                    self._next(self.vehicle, self.fixed_link)
                raise RowSkip("unparsable CSV line" if fields is None else "too few fields")
            if not self.values.wanted(fields):
                return  # another kind of row (a neighbour cell): not a row of any link
            vehicle, link = self._vehicle_of(fields), self._link_of(fields)
            owner = self.run(vehicle)
            self._keep(owner, vehicle, link, fields, width, recv, self._next(vehicle, link))
        except RowSkip as skip:
            (owner.report.skipped if owner is not None else self.orphans)[skip.reason] += 1

    def _next(self, vehicle: str, link: str | None) -> int:
        """The next ``seq`` of a stream: its rows counted, kept or skipped (a gap)."""
        key = (vehicle, link or "")
        self.seqs[key] += 1
        return self.seqs[key] - 1

    def _keep(self, run: VehicleRun, vehicle: str, link: str, fields: list[str], width: int,
              recv: float | None, seq: int) -> None:
        spec = self.m.spec
        t, k = spec.time, spec.link
        if recv is None:
            raise RowSkip(f"bad {t.column}")
        if not 0.0 <= recv <= _MAX_EPOCH_S:
            raise RowSkip(f"{t.column} out of range")
        self.values.begin_row()
        ts, sender_clock = recv, t.sender_clock
        if t.sender_column is not None:
            sent = self.stamp(fields[self.values.index[t.sender_column]])
            if sent is None:
                raise RowSkip(f"bad {t.sender_column}")
            ts = sent
        delay = self.values.number(fields, k.delay)
        if delay is not None:
            ts, sender_clock = recv - delay * _MS[k.delay_unit] / 1000.0, True
        rat = self._rat(fields)
        pose = self._pose(run, fields)
        cell: str | None = None
        found = self.values.cell(fields, k.cell_id)
        if found is not None:
            cell = found[1]
            if k.cell_id_hex and not _is_hex(cell):
                raise RowSkip(f"{found[0]} not a hex string")
        rtt, probed = self._probe(fields)
        sample, screened = link_sample({
            "ts": ts, "seq": seq, "rat": rat, "cell_id": cell,
            "rsrp_dbm": self.values.number(fields, k.rsrp),
            "rsrq_db": self.values.number(fields, k.rsrq),
            "sinr_db": self.values.number(fields, k.sinr), "rtt_ms": rtt, "probe": probed,
            "sender_clock": sender_clock,
            "ul_kbps": self._rate(fields, k.ul), "dl_kbps": self._rate(fields, k.dl)})
        screened += tuple(Screened(wire_field, self.values.set_aside[column])
                          for wire_field, column in (
                              ("rsrp_dbm", k.rsrp), ("rsrq_db", k.rsrq), ("sinr_db", k.sinr),
                              ("rtt_ms", k.rtt), ("ul_kbps", k.ul), ("dl_kbps", k.dl))
                          if column is not None and column in self.values.set_aside)
        state = None if pose is None else self._state(run, fields, pose, recv, ts, seq,
                                                         link)
        if sample.rtt_ms is not None:
            self.rtts.append(sample.rtt_ms)
        if delay is not None:
            self.delays.append(delay * _MS[k.delay_unit])
        if state is not None:
            run.entries.append(state)
            if isinstance(state, _Pending):
                state.at = len(run.entries) - 1
        run.report.kept_row(screened)
        if len(fields) > width:
            run.report.notes[f"rows with {len(fields)} values under a header of {width} names "
                             "(the named ones first; the rest ignored)"] += 1
        run.entries.append((recv, Route("link", self.site, vehicle, link), sample))
        run.cells.setdefault(link, []).append(cell)
        if link not in run.report.links:
            run.report.links.append(link)

    def _rat(self, fields: list[str]) -> str | None:
        k = self.m.spec.link
        if k.rat_column is None:
            return k.rat
        mode = self.values.raw(fields, k.rat_column)
        if mode is None:
            raise RowSkip(f"no {k.rat_column}")
        rat = self.m.rats.get(mode.upper())
        if rat is None:
            raise RowSkip(f"unknown {k.rat_column} {mode[:24]!r}")
        return rat

    def _rate(self, fields: list[str], name: str | None) -> float | None:
        """UL/DL in kbit/s (as written when the export says kbps)."""
        value = self.values.number(fields, name)
        return None if value is None else value * _KBPS[self.m.spec.link.rate_unit]

    def _probe(self, fields: list[str]) -> tuple[float | None, bool]:
        """(rtt_ms, probe): whether a probe ran in this row, and its answer if any."""
        k = self.m.spec.link
        if k.every_row_is_a_probe:
            rtt = self.values.number(fields, k.rtt)
        elif not any(self.values.raw(fields, c) is not None for c in self.probe_columns):
            return None, False  # no probe in this row: no evidence of anything
        else:
            i = self.values.index.get(k.rtt) if k.rtt else None
            text = fields[i].strip() if i is not None else ""
            try:
                rtt = float(text)
            except ValueError:
                return None, True  # the probe ran and gave no number: no answer
            if not math.isfinite(rtt):
                return None, True
            # a number outside a round trip's range (0, -1) is a marker: the screen makes it
            # no probe
        if rtt is not None:
            rtt *= _MS[k.rtt_unit]
        return rtt, True

    def _pose(self, run: VehicleRun, fields: list[str]
              ) -> tuple[float, float, float, float | None] | None:
        """(lat, lon, meridian convergence, speed as written) of the row; None where version 2
        has no position for it (version 1 skips the row)."""
        p, v1 = self.m.spec.position, self.m.version == 1
        if p is None:
            return None
        convergence = 0.0
        lat = lon = None
        if p.lat is not None:
            lat, lon = self.values.number(fields, p.lat), self.values.number(fields, p.lon)
        else:
            x, y = self.values.number(fields, p.easting), self.values.number(fields, p.northing)
            if x is None or y is None:
                pass
            elif not (0.0 <= x <= 1_000_000.0 and 0.0 <= y <= 10_000_000.0):
                if v1:
                    raise RowSkip(f"{p.easting}/{p.northing} outside a UTM zone")
                run.report.notes[f"{p.easting}/{p.northing} outside a UTM zone: no "
                                 "position"] += 1
                return None
            else:
                lat, lon, convergence = utm_to_latlon(x, y, p.utm_zone or 0,
                                                      p.hemisphere == "N")
        if lat is None or lon is None:
            if v1:
                raise RowSkip("no position")
            run.report.notes["rows without a position: link sample only"] += 1
            return None
        speed = self.values.number(fields, p.speed)
        if speed is None and v1:
            raise RowSkip("no speed")
        return lat, lon, convergence, speed

    def _state(self, run: VehicleRun, fields: list[str],
               pose: tuple[float, float, float, float | None], recv: float, ts: float,
               seq: int, link: str) -> Entry | _Pending | None:
        """The row's vehicle state (its speed from the track when the row has none); None
        where version 2 cannot make one (the link sample stands)."""
        p, v1 = self.m.spec.position, self.m.version == 1
        assert p is not None
        lat, lon, convergence, speed = pose
        course, anchor = run.heading, run.anchor
        given = self.values.first(fields, p.heading)
        if given is not None:
            course = self._course(self.values.number(fields, given[0]), convergence)
        elif not p.heading_from_track:
            if v1:
                raise RowSkip("no heading")
            run.report.notes["rows without a heading: link sample only"] += 1
            return None
        elif anchor is None:
            anchor = (lat, lon)
        else:
            moved, direction = track_bearing(anchor[0], anchor[1], lat, lon)
            if moved >= HEADING_MIN_M:
                course, anchor = direction, (lat, lon)
        if not v1 and run.last_state == recv and run.last_state_link != link:
            return None  # another link's row of the same moment: one pose
        # One stream (a fixed vehicle and link): states are numbered as its rows are, gaps
        # and all, as version 1 and the dedicated importers number them; several streams
        # share one vehicle's states, numbered by the states themselves.
        one_stream = self.m.spec.vehicle_column is None and self.fixed_link is not None
        values = {"ts": ts, "seq": seq if v1 or one_stream else run.states, "lat": lat, "lon": lon,
                  "speed_mps": None if speed is None
                  else speed / 3.6 if p.speed_unit == "km/h" else speed,
                  "heading_deg": course, "mode": "autonomous"}
        made: Entry | _Pending
        if speed is None:
            made = _Pending(at=-1, recv=recv, fields=values)
        else:
            try:
                made = (recv, Route("state", self.site, run.report.vehicle),
                        wire(VehicleState, values))
            except RowSkip as skip:
                if v1:
                    raise
                run.report.notes[f"vehicle states not kept: {skip.reason}"] += 1
                return None
        run.heading, run.anchor = course, anchor
        run.states += 1
        run.last_state, run.last_state_link = recv, link
        run.points.append((recv, lat, lon))
        return made

    def _course(self, value: float | None, convergence: float) -> float:
        """A heading value as degrees clockwise from true north, in [0, 360)."""
        p = self.m.spec.position
        assert p is not None
        if value is None:
            return 0.0
        if p.heading_unit == "deg":
            return value % 360.0
        if p.heading_unit == "rad":
            return math.degrees(value) % 360.0
        return (90.0 - math.degrees(value) + convergence) % 360.0

    # --- the file done ----------------------------------------------------------------------

    def finish(self, rows: int, times: list[float | None]) -> list[tuple[FileReport,
                                                                           list[Entry]]]:
        """Each vehicle's (report, messages); refuses a file with nothing usable."""
        if not rows:
            raise DriveLogImportError(self.path, "no data rows after the header", 2)
        out = []
        kept_any = False
        for run in self.runs.values():
            entries = self._resolve(run)
            report = run.report
            report.kept = sum(len(c) for c in run.cells.values())
            report.rows = report.kept + sum(report.skipped.values())
            states = sum(1 for e in entries if e[1].kind == "state")
            report.messages.update({"link": report.kept, **({"state": states} if states
                                                            else {})})
            report.cell_changes = sum(count_changes(c) for c in run.cells.values())
            kept_any = kept_any or report.kept > 0
            if report.kept:
                out.append((report, entries))
        skipped = Counter(self.orphans)
        for run in self.runs.values():
            skipped.update(run.report.skipped)
        if not kept_any:
            reasons = ", ".join(f"{r} x{n}" for r, n in skipped.most_common())
            raise DriveLogImportError(self.path, f"no usable rows ({rows} rows; skipped: "
                                                 f"{reasons or 'none, all filtered out'})")
        for run in self.runs.values():
            if not run.report.kept:
                self.orphans.update(run.report.skipped)
        first = out[0][0]
        if self.m.version == 1 or (len(out) == 1 and self.m.spec.rows is None):
            first.rows = rows  # one stream: every data row is its row
        first.skipped.update(self.orphans)
        filtered = rows - sum(r.rows for r, _ in out) - sum(self.orphans.values())
        if filtered:
            first.notes["rows not kept by the mapping's [rows] filter (not measurements of "
                        "the mapped links)"] += filtered
        check_backwards(self.m.spec.time.column, times, first.notes)
        check_delays("RTT", "link.rtt_unit", self.rtts, first.notes)
        check_delays("one-way delay", "link.delay_unit", self.delays, first.notes)
        return out

    def _resolve(self, run: VehicleRun) -> list[Entry]:
        """States with a speed from the track filled in (dropped where none can be had)."""
        pending = [e for e in run.entries if isinstance(e, _Pending)]
        if pending:
            track = sorted(run.points)
            speeds = dict(zip((t for t, _, _ in track),
                              track_speeds([t for t, _, _ in track],
                                           [(a, b) for _, a, b in track]), strict=True))
            for state in pending:
                speed = speeds.get(state.recv)
                if speed is None:
                    run.report.notes["vehicle states without a speed (the track spans under "
                                     "a second)"] += 1
                    continue
                try:
                    made = wire(VehicleState, {**state.fields, "speed_mps": speed})
                except RowSkip as skip:
                    run.report.notes[f"vehicle states not kept: {skip.reason}"] += 1
                    continue
                run.entries[state.at] = (state.recv, Route("state", self.site,
                                                           run.report.vehicle), made)
        return [e for e in run.entries if not isinstance(e, _Pending)]


def _wire_name(value: str) -> str:
    if NAME.match(value):
        return value
    cleaned = "".join(c if NAME.match(c) else "_" for c in value).strip("_")[:64]
    if not cleaned:
        raise RowSkip(f"{value[:24]!r} cannot be a name")
    return cleaned


def _is_hex(text: str) -> bool:
    return 1 <= len(text) <= 64 and all(c in "0123456789abcdefABCDEF" for c in text)
