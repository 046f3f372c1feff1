"""Files into vehicles and drives: whose each input file is, on which link, and when each
vehicle drove.

An importer reads one file at a time; a drive-test campaign is not that shape. A phone logs a
route several times (one file per run: several drives of one vehicle), a car carries three
modems (one file each: one vehicle with three links). The user says which vehicle and link
each file is (``--vehicle``, ``--link``); here the files of one vehicle are grouped into drives
by time (files whose spans overlap are one drive, on several links; the others are separate
drives), and each drive is framed by the vehicle entering service at its first row and
leaving at its last. Replay honours that as it honours a live vehicle's word (docs/protocol.md,
``ServiceStatus``), so nothing — staleness, alerts, availability, hours — counts a vehicle's
time outside its drives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from telemetry.drivelog import Drive
from telemetry.topics import Route
from telemetry.wire import Message, ServiceStatus, VehicleState

#: One message ready for the writer: (recv_time, route, message).
Entry = tuple[float, Route, Message]

#: Why a drive's vehicle leaves service at its end: the file ends, not the vehicle's day.
DRIVE_END = "end of drive (its file ends)"


class DriveError(ValueError):
    """Files that cannot be one vehicle as the user named them (two give the same link of one
    vehicle at the same time)."""


@dataclass
class FileRun:
    """One input file's messages, already named for its vehicle and link(s)."""

    path: Path
    vehicle: str
    links: list[str]
    entries: list[Entry]
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        times = [at for at, _, _ in self.entries]
        self.start, self.end = min(times), max(times)


@dataclass
class _Group:
    vehicle: str
    runs: list[FileRun] = field(default_factory=list)

    @property
    def end(self) -> float:
        return max(r.end for r in self.runs)


def renamed(entries: list[Entry], vehicle: str, link: str | None) -> list[Entry]:
    """``entries`` as the given vehicle's, on ``link`` when one is named (a file has one
    link), keeping everything else."""
    out: list[Entry] = []
    for at, route, msg in entries:
        named = route
        if route.kind == "link" and link is not None:
            named = Route("link", route.site, vehicle, link)
        elif route.source != vehicle:
            named = route._replace(source=vehicle)
        out.append((at, named, msg))
    return out


def link_names(links: Sequence[str] | None, files: int) -> list[str | None]:
    """Each file's link as the user named them: none (the importer's own), one for every
    file, or one per file in order."""
    if not links:
        return [None] * files
    if len(links) == 1:
        return [links[0]] * files
    if len(links) != files:
        raise DriveError(f"--link given {len(links)} times for {files} files: give it once "
                         "(every file the same link) or once per file, in the files' order")
    return list(links)


def drives(runs: list[FileRun]) -> tuple[list[Drive], list[Entry]]:
    """Group each vehicle's files into drives (overlapping spans: one drive) and return the
    drives with every message, in time order, each drive framed by its service markers.

    A drive made of several files has its vehicle's state from all of them, in time order and
    numbered afresh (each file numbered its own rows); one file's drive is left as it was.
    """
    by_vehicle: dict[str, list[FileRun]] = defaultdict(list)
    for run in runs:
        by_vehicle[run.vehicle].append(run)
    found: list[Drive] = []
    framed: list[tuple[float, int, int, Entry]] = []  # (time, rank, order) keeps the frame
    order = 0
    for vehicle, mine in by_vehicle.items():
        groups: list[_Group] = []
        for run in sorted(mine, key=lambda r: (r.start, str(r.path))):
            if groups and run.start <= groups[-1].end:
                _check_links(groups[-1], run)
                groups[-1].runs.append(run)
            else:
                groups.append(_Group(vehicle, [run]))
        for group in groups:
            drive = Drive(vehicle=vehicle, start=min(r.start for r in group.runs),
                          end=group.end,
                          links=sorted({link for r in group.runs for link in r.links}),
                          files=[r.path.name for r in group.runs])
            found.append(drive)
            site = group.runs[0].entries[0][1].site
            route = Route("service", site, vehicle)
            framed.append((drive.start, 0, order, (drive.start, route, ServiceStatus(
                ts=drive.start, status="in_service",
                reason=f"drive from {', '.join(drive.files)}"))))
            for at, r, msg in _messages(group):
                order += 1
                framed.append((at, 1, order, (at, r, msg)))
            framed.append((drive.end, 2, order, (drive.end, route, ServiceStatus(
                ts=drive.end, status="out_of_service", reason=DRIVE_END))))
            order += 1
    framed.sort(key=lambda f: (f[0], f[1], f[2]))
    return sorted(found, key=lambda d: (d.start, d.vehicle)), [f[3] for f in framed]


def _check_links(group: _Group, run: FileRun) -> None:
    for other in group.runs:
        same = set(other.links) & set(run.links)
        if same and run.start <= other.end:
            raise DriveError(
                f"{other.path.name} and {run.path.name} both give link {sorted(same)[0]} of "
                f"vehicle {run.vehicle} at the same time: name each file's link (--link, in "
                "the files' order), or import them as separate vehicles (without --vehicle)")


def _messages(group: _Group) -> list[Entry]:
    """The drive's messages: a single file's as they are; several files' link messages as
    they are and their vehicle states merged into one stream."""
    if len(group.runs) == 1:
        return group.runs[0].entries
    states = sorted(((at, route, msg) for run in group.runs for at, route, msg in run.entries
                     if route.kind == "state"), key=lambda e: e[0])
    merged: list[Entry] = []
    for at, route, msg in states:
        if merged and at == merged[-1][0]:
            continue  # two files stamped the vehicle's pose at the same moment: one pose
        assert isinstance(msg, VehicleState)
        merged.append((at, route, msgspec.structs.replace(msg, seq=len(merged))))
    others = [e for run in group.runs for e in run.entries if e[1].kind != "state"]
    return sorted(merged + others, key=lambda e: e[0])
