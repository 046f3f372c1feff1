"""Importers: real drive-test logs turned into l4mon drive logs (``telemetry.drivelog``).

Each input file becomes one vehicle, named after the file, with its link(s), unless the user
names the vehicle every file is and each file's link (scenarios/importers/drives.py: several
runs of one route, several modems of one car); every message keeps the source's own figures
and times (``recv_time`` is the source's clock, not the
importer's). Two formats:

* ``cicv5g`` (:mod:`scenarios.importers.cicv5g`): the CICV5G round-trip delay dataset
  (Tongji University test site, CC BY 4.0).
* ``gnettrack`` (:mod:`scenarios.importers.gnettrack`): G-NetTrack Pro CSV exports, e.g. the
  UCC 5G dataset (GPL-3.0; a log imported from it is derived data and stays outside the
  project tree).

A file that is not what it claims to be (missing, empty, binary, HTML, wrong header, no usable
row) raises :class:`DriveLogImportError` naming the file and, where there is one, the line.
A bad row never stops an import: it is skipped and its reason counted in the report. Rows are
all or nothing: a row whose link sample or vehicle state would break a wire bound (or lacks a
field the wire needs) is skipped whole, so every kept row gives exactly one message per kind.
One thing does not cost the row: a link figure outside its physical range (a tool's "no value"
marker such as RSRP -200 dBm or an RTT of 0, telemetry/ranges.py) is set to None, not measured,
and counted per field and reason in the report and the manifest (``fields_not_measured``); an
RTT marker also makes the row carry no probe. All inputs are read and checked before the output
is written, so a bad file leaves no log.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import msgspec

from scenarios.importers import drives
from telemetry.drivelog import Conditions, DriveLogWriter, Manifest
from telemetry.ranges import Screened, describe, merged, screen_link, tally
from telemetry.topics import Route
from telemetry.wire import LinkSample, Message

Format = Literal["gnettrack", "cicv5g", "mapped"]

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
_WIRE_FIELD = re.compile(r"at `\$\.(\w+)`")
_EOL = re.compile(r"\r\n|\r|\n")
#: How much of the file is looked at to tell text from binary.
_SNIFF = 8192


class DriveLogImportError(ValueError):
    """An input that cannot be imported; the message starts with ``file[:line]:``."""

    def __init__(self, path: Path | str, what: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.what = what
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {what}")


@dataclass
class FileReport:
    """What one input gave."""

    path: Path
    vehicle: str
    links: list[str]
    rows: int = 0  # data rows in the file (header and blank lines not counted)
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows
    messages: Counter[str] = field(default_factory=Counter)  # kind -> messages
    cell_changes: int = 0  # serving-cell changes between consecutive kept link samples
    notes: Counter[str] = field(default_factory=Counter)  # oddities that did not cost a row
    #: Link figures of kept rows outside their physical range, set to None (not measured):
    #: {field: {reason: count}} (telemetry/ranges.py).
    fields_not_measured: dict[str, dict[str, int]] = field(default_factory=dict)

    def kept_row(self, screened: tuple[Screened, ...]) -> None:
        """A row was kept: count the figures its link sample had screened out."""
        tally(screened, self.fields_not_measured)


@dataclass
class ImportReport:
    out: Path
    format: str
    files: list[FileReport]
    manifest: Manifest

    @property
    def vehicles(self) -> list[str]:
        return sorted({f.vehicle for f in self.files})

    @property
    def messages(self) -> Counter[str]:
        return sum((f.messages for f in self.files), Counter())

    @property
    def skipped(self) -> Counter[str]:
        return sum((f.skipped for f in self.files), Counter())

    @property
    def fields_not_measured(self) -> dict[str, dict[str, int]]:
        """Every file's screened figures added up: {field: {reason: count}}."""
        return merged(f.fields_not_measured for f in self.files)

    @property
    def cell_changes(self) -> dict[str, int]:
        return {str(f.path): f.cell_changes for f in self.files}

    def lines(self) -> list[str]:
        """A short human-readable account, one line per file and one for the total."""
        out = []
        for f in self.files:
            skipped = ", ".join(f"{r} x{n}" for r, n in sorted(f.skipped.items())) or "none"
            out.append(f"{f.path.name}: vehicle {f.vehicle}, rows {f.rows}, kept {f.kept}, "
                       f"messages {dict(sorted(f.messages.items()))}, "
                       f"cell changes {f.cell_changes}, skipped: {skipped}")
            out += [f"  warning: {note} (x{n})" for note, n in sorted(f.notes.items())]
            out += [f"  warning: {line}" for line in describe(f.fields_not_measured)]
        for d in self.manifest.drives:
            out.append(f"drive: vehicle {d.vehicle}, {_clock(d.start)}–{_clock(d.end)} UTC "
                       f"({d.duration_s:.0f} s), links {', '.join(d.links)}, "
                       f"from {', '.join(d.files)}")
        out.append(f"{self.out}: {len(self.files)} files, "
                   f"{len(self.manifest.drives)} drives of {len(self.vehicles)} vehicles, "
                   f"{sum(self.messages.values())} messages")
        return out


#: One message ready for the writer: (recv_time, route, message).
Entry = tuple[float, Route, Message]


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


class RowSkip(Exception):
    """Raised while converting a row: the row is skipped and ``reason`` counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def number(text: str, name: str, missing: Collection[str]) -> float | None:
    """A cell's value: None when it is one of ``missing`` (the tool's "no value"); a finite
    number; anything else skips the row, saying which column."""
    text = text.strip()
    if text in missing:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowSkip(f"{name} not a number") from None
    if not math.isfinite(value):
        raise RowSkip(f"{name} not finite")
    return value


def wire(cls: type[Any], fields: dict[str, Any]) -> Any:
    """``cls(**fields)`` checked against the wire bounds; a violation skips the row."""
    try:
        return msgspec.convert(fields, type=cls)
    except msgspec.ValidationError as error:
        text = str(error)
        where = _WIRE_FIELD.search(text)
        name = where.group(1) if where else "?"
        rule = text.split(" - at ", maxsplit=1)[0]
        raise RowSkip(f"{name} out of wire bounds ({rule})") from None


def link_sample(fields: dict[str, Any]) -> tuple[LinkSample, tuple[Screened, ...]]:
    """A row's link sample, and the figures screened out of it: each outside its physical
    range is set to None (not measured; an RTT marker is no probe), the rest is checked
    against the wire bounds as ``wire`` does (a violation skips the row). Count the screened
    figures with ``FileReport.kept_row`` once the row is kept."""
    fields, screened = screen_link(fields)
    return wire(LinkSample, fields), screened


def vehicle_id(path: Path, taken: set[str] | None = None) -> str:
    """The file's stem made a wire Name (``^[A-Za-z0-9_.:-]{1,64}$``), unique among ``taken``."""
    name = _NOT_NAME_CHARS.sub("_", path.stem).strip("_")[:64] or "vehicle"
    if taken is None:
        return name
    base, n = name, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: 64 - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def read_text(path: Path, kind: str) -> str:
    """The file as text, or a clear error when it is missing, empty, binary or a web page."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DriveLogImportError(path, "file not found") from None
    except IsADirectoryError:
        raise DriveLogImportError(path, f"is a directory, not a {kind} file") from None
    except OSError as error:
        raise DriveLogImportError(path, f"cannot read: {error.strerror or error}") from None
    if not data.strip():
        raise DriveLogImportError(path, f"empty file, not a {kind} file")
    if data[:4] == b"PK\x03\x04" and path.suffix.lower() in (".xlsx", ".xlsm"):
        # The CICV5G release ships .xlsx copies of some runs beside the text files.
        raise DriveLogImportError(path, f"an Excel workbook, not a {kind} text file: import "
                                        "the run's .txt (the same rows), or save the sheet "
                                        "as CSV and import that")
    if b"\x00" in data[:_SNIFF]:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DriveLogImportError(path, f"binary data, not a {kind} text file", line)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DriveLogImportError(path, f"not UTF-8 text (binary?), not a {kind} file",
                                  line) from None
    head = text.lstrip()[:200].lower()
    if head.startswith("<"):
        what = "HTML" if ("<html" in head or "<!doctype html" in head) else "HTML/XML markup"
        line = text[: len(text) - len(text.lstrip())].count("\n") + 1
        raise DriveLogImportError(path, f"{what} (a saved web page?), not a {kind} file", line)
    return text


def split_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (CR, LF or CRLF), without the line ends."""
    lines = _EOL.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def finish(report: FileReport, path: Path, *, rows: int, cells: list[str | None]) -> None:
    """Close a file's report: refuse a file with nothing usable, count kept rows and changes.

    Every kept row gave one state and one link message.
    """
    report.rows = rows
    report.kept = len(cells)
    if not report.rows:
        raise DriveLogImportError(path, "no data rows after the header", 2)
    if not report.kept:
        reasons = ", ".join(f"{r} x{n}" for r, n in report.skipped.most_common())
        raise DriveLogImportError(path, f"no usable rows ({report.rows} skipped: {reasons})")
    report.messages.update(state=report.kept, link=report.kept)
    report.cell_changes = count_changes(cells)


def count_changes(cells: list[str | None]) -> int:
    """Serving-cell changes between the rows that name a cell: a row without one (a gap in
    the reporting, not a handover) is passed over, so A, none, A is no change and A, none, B
    is one."""
    named = [c for c in cells if c]
    return sum(1 for a, b in pairwise(named) if a != b)


def declare_pace(entries: list[Entry]) -> list[Entry]:
    """``entries`` with each state and link message declaring its stream's pace
    (``interval_s``): the upper quartile of the positive steps between its rows' times over
    the whole file. The hub learns a pace only from the samples it has seen so far, and a
    logger that doubles some seconds (G-NetTrack's repeated stamps, spread within the second)
    looks twice as fast for a while; the file as a whole says how often it writes when it
    does not double, and the hub takes the slower of the two (telemetry/pace.py)."""
    times: dict[Route, list[float]] = {}
    for recv_time, route, _ in entries:
        if route.kind in ("state", "link"):
            times.setdefault(route, []).append(recv_time)
    pace: dict[Route, float] = {}
    for route, stamps in times.items():
        steps = sorted(b - a for a, b in pairwise(sorted(stamps)) if b > a)
        if steps:
            pace[route] = round(steps[(3 * len(steps)) // 4], 6)
    return [(at, route, msgspec.structs.replace(msg, interval_s=pace[route]))  # type: ignore[arg-type]
            if route in pace else (at, route, msg) for at, route, msg in entries]


def import_files(fmt: Format, inputs: list[Path], out: Path, *, site: str | None = None,
                 conditions: Conditions | None = None,
                 timezone: str | None = None, mapping: str | Path | None = None,
                 vehicle: str | None = None, links: Sequence[str] | None = None,
                 progress: Callable[[float], None] | None = None) -> ImportReport:
    """Import ``inputs`` of format ``fmt`` into a new drive log at ``out``.

    Each file is one vehicle named after it, unless ``vehicle`` names the one vehicle every
    file is (several runs of a route, several modems of a car); ``links`` names each file's
    link (once for all, or once per file in order; default: the format's own). A vehicle's
    files whose time spans overlap are one drive on several links; the others are separate
    drives (scenarios/importers/drives.py), recorded in the manifest and framed by the
    vehicle entering and leaving service, so replay counts nothing between them.

    ``mapped`` reads any drive-test tool's CSV export through ``mapping``, a TOML file that
    names its columns (or the name of a shipped one: scenarios/importers/mapped.py).
    ``out`` must not exist yet or be an empty directory. Raises :class:`DriveLogImportError`
    for an input that cannot be imported, before anything is written.
    """
    module = _format_module(fmt, mapping)
    if site is None:  # the dataset's own place, so unrelated imports are never one site
        site = module.DEFAULT_SITE
    options = _checked_options(fmt, module, inputs, site=site, timezone=timezone,
                               vehicle=vehicle, links=links)
    per_file = drives.link_names(links, len(inputs))
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DriveLogImportError(out, "output exists and is not an empty directory; "
                                       "an import never mixes into another log")
    results, runs = _parse_inputs(module, inputs, per_file, site=site, vehicle=vehicle,
                                  options=options, progress=progress)
    found, entries = drives.drives(runs)
    source = dict(module.SOURCE)
    source["files"] = [p.name for p in dict.fromkeys(report.path for report, _ in results)]
    if timezone is not None:
        source["timezone"] = timezone
    files = [report for report, _ in results]
    writer = DriveLogWriter(out, manifest=Manifest(
        site=site, conditions=conditions or Conditions(), source=source,
        not_measured=list(module.NOT_MEASURED),
        hub_config=getattr(module, "HUB_CONFIG", None),
        fields_not_measured=merged(f.fields_not_measured for f in files), drives=found))
    writer.add_all(declare_pace(entries))
    manifest = writer.close()
    return ImportReport(out=out, format=fmt, files=files, manifest=manifest)


def _format_module(fmt: Format, mapping: str | Path | None) -> Any:
    """The reader of ``fmt``: a module (gnettrack, cicv5g) or a mapped importer."""
    from scenarios.importers import cicv5g, gnettrack

    module: Any
    if fmt == "mapped":
        from scenarios.importers import mapped

        if mapping is None:
            raise ValueError("the mapped format needs --mapping (a TOML file, or the name of "
                             f"a shipped one: {', '.join(mapped.shipped())})")
        module = mapped.Importer(mapped.load_mapping(mapping))
    elif mapping is not None:
        raise ValueError("--mapping applies to the mapped format only")
    else:
        module = {"cicv5g": cicv5g, "gnettrack": gnettrack}.get(fmt)
    if module is None:
        raise ValueError(f"unknown format {fmt!r}; expected 'gnettrack', 'cicv5g' or "
                         "'mapped'")
    return module


def _checked_options(fmt: Format, module: Any, inputs: list[Path], *, site: str,
                     timezone: str | None, vehicle: str | None,
                     links: Sequence[str] | None) -> dict[str, Any]:
    """The reader's options, once every name and flag is known to fit the format: a wrong
    one fails here, before anything is read."""
    from scenarios.importers import gnettrack

    if not _NAME.match(site):
        raise ValueError(f"site {site!r} is not a wire name (^[A-Za-z0-9_.:-]{{1,64}}$)")
    if not inputs:
        raise ValueError("no input files")
    options: dict[str, Any] = {}
    if timezone is not None:
        if fmt == "cicv5g":
            raise ValueError("--tz does not apply to cicv5g (its stamps are UTC epoch "
                             "milliseconds)")
        gnettrack.zone(timezone)  # an unknown zone fails before anything is read
        options["timezone"] = timezone
    if vehicle is not None and not _NAME.match(vehicle):
        raise ValueError(f"vehicle {vehicle!r} is not a wire name (^[A-Za-z0-9_.:-]{{1,64}}$)")
    for link in links or ():
        if not _NAME.match(link):
            raise ValueError(f"link {link!r} is not a wire name (^[A-Za-z0-9_.:-]{{1,64}}$)")
    if vehicle is not None and getattr(module, "names_vehicles", False):
        raise ValueError("--vehicle contradicts the mapping, which takes each row's vehicle "
                         "from a column (vehicle_column)")
    if links and getattr(module, "names_links", False):
        raise ValueError("--link contradicts the mapping, which takes each row's link from a "
                         "column (link.name_column)")
    return options


def _parse_inputs(module: Any, inputs: list[Path], per_file: Sequence[str | None], *,
                  site: str, vehicle: str | None, options: dict[str, Any],
                  progress: Callable[[float], None] | None
                  ) -> tuple[list[tuple[FileReport, list[Any]]], list[drives.FileRun]]:
    """Every input read: its reports with their entries, and each vehicle's run of it."""
    taken: set[str] = set()
    results = []
    runs = []
    for done, (path, link) in enumerate(zip(map(Path, inputs), per_file, strict=True),
                                        start=1):
        name = vehicle or vehicle_id(path, taken)
        # A mapping may find several vehicles in one file (a vehicle column): one run each.
        parsed = (module.parse_runs(path, vehicle=name, site=site, **options)
                  if hasattr(module, "parse_runs")
                  else [module.parse(path, vehicle=name, site=site, **options)])
        for report, entries in parsed:
            if link is not None:
                report.links = [link]
            results.append((report, entries))
            runs.append(drives.FileRun(path, report.vehicle, report.links,
                                       drives.renamed(entries, report.vehicle, link)))
        if progress is not None:
            progress(done)
    return results, runs


__all__ = ["DriveLogImportError", "FileReport", "Format", "ImportReport", "import_files",
           "link_sample", "vehicle_id"]
