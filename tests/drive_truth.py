"""What a real drive-test file says, read from its raw columns here (csv, numpy) and nowhere
else: the truth the real-data tests hold the importers, the replay and the report to.

Computed from each file, never looked up by its name, so any file of a dataset can be dropped
into ../shared/data beside the others. ``neutral_copy`` and ``perturbed_copy`` write files
into a test's temporary folder (never the repository: the G-NetTrack data is GPL-3.0) to prove
it: under a name that says nothing, and with rows dropped and a stretch moved to another cell,
the truth moves with the file and the same assertions hold.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

import numpy as np

Fmt = Literal["cicv5g", "gnettrack"]

#: The plausible round trip of docs/protocol.md (> 0 … 60,000 ms): 0 and -1 are a logger's
#: "no value", not a measurement.
RTT_MAX_MS: Final = 60_000.0
_HEX: Final = re.compile(r"^[0-9A-Fa-f]+$")
_MISSING: Final = ("", "-")
#: NetworkMode words that name a radio family (G-NetTrack writes e.g. 5G, LTE, HSPA+, EDGE).
_FAMILIES: Final = ("5G", "NR", "LTE", "4G", "HS", "UMTS", "WCDMA", "3G")
_2G: Final = ("GSM", "EDGE", "GPRS", "2G")


@dataclass(frozen=True)
class FileTruth:
    """One file's data rows as the file states them."""

    rows: int  # data rows (blank lines are none)
    usable: int  # rows that carry what a row of the format must (time, cell or mode, ...)
    times: np.ndarray  # each usable row's time, s (G-NetTrack: its stamped second)
    cells: tuple[str | None, ...]  # each usable row's serving cell id, None where it names none
    rtts: np.ndarray  # every round trip the usable rows measured, ms, in file order

    @property
    def cell_changes(self) -> int:
        """Changes of the serving cell id between consecutive rows that name a cell."""
        named = [c for c in self.cells if c is not None]
        return sum(1 for a, b in pairwise(named) if a != b)

    @property
    def span_s(self) -> float:
        return float(self.times.max() - self.times.min()) if self.times.size else 0.0


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _round_trips(values: list[float]) -> np.ndarray:
    rtt = np.array(values, dtype=np.float64)
    return rtt[(rtt > 0) & (rtt <= RTT_MAX_MS)]


def cicv5g(path: Path) -> FileTruth:
    """Whitespace-separated, the ten named columns first (``pub_time sub_time delay utmX utmY
    heading velocity cellid sinr rsrp``; W2S rows add two unnamed ones): a row is usable with
    all ten, numbers where numbers belong and a hex cell id."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split() for line in lines if line.strip()]
    usable = [f for f in rows if len(f) >= 10 and _HEX.match(f[7])
              and all(_finite(f[i]) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9))]
    table = np.array([[float(f[1]), float(f[2])] for f in usable], dtype=np.float64)
    table = table.reshape(-1, 2)
    return FileTruth(rows=len(rows), usable=len(usable), times=table[:, 0] / 1000.0,
                     cells=tuple(f[7] for f in usable), rtts=_round_trips(list(table[:, 1])))


def _family(mode: str) -> bool:
    word = mode.strip().upper()
    return word.startswith(_FAMILIES) or word in _2G


def gnettrack(path: Path) -> FileTruth:
    """G-NetTrack CSV: a row is usable with a ``Timestamp`` (Irish local time, 1 s), a
    ``NetworkMode`` of a known radio family, a position and a speed; the serving cell is
    ``RAWCELLID``, ``CellID`` where that is ``-``; ``PINGAVG`` is the round trip."""
    with path.open(newline="", encoding="utf-8") as fh:
        text = fh.read()
    delimiter = "\t" if "\t" in text.partition("\n")[0] else ","
    records = [r for r in csv.DictReader(io.StringIO(text), delimiter=delimiter)
               if any((v or "").strip() for v in r.values())]
    zone = ZoneInfo("Europe/Dublin")
    times: list[float] = []
    cells: list[str | None] = []
    pings: list[float] = []
    for r in records:
        try:
            second = datetime.strptime((r.get("Timestamp") or "").strip(),
                                       "%Y.%m.%d_%H.%M.%S").replace(tzinfo=zone).timestamp()
        except ValueError:
            continue
        if not _family(r.get("NetworkMode") or "") or not all(
                _finite(r.get(c) or "-") for c in ("Latitude", "Longitude", "Speed")):
            continue
        times.append(second)
        raw, cell = (r.get("RAWCELLID") or "").strip(), (r.get("CellID") or "").strip()
        cells.append(raw if raw not in _MISSING else cell if cell not in _MISSING else None)
        ping = (r.get("PINGAVG") or "").strip()
        if _finite(ping):
            pings.append(float(ping))
    return FileTruth(rows=len(records), usable=len(times), times=np.array(times),
                     cells=tuple(cells), rtts=_round_trips(pings))


def truth(fmt: Fmt, path: Path) -> FileTruth:
    return cicv5g(path) if fmt == "cicv5g" else gnettrack(path)


# --- copies that prove no name and no fixed figure is relied on -----------------------------


def neutral_copy(path: Path, folder: Path, index: int) -> Path:
    """``path`` as ``folder/drive-<index>`` with its suffix: nothing of its name survives
    (no band, no date, no run number)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"drive-{index:02d}{path.suffix}"
    shutil.copyfile(path, out)
    return out


@dataclass(frozen=True)
class Perturbation:
    """What ``perturbed_copy`` did, in data rows of the source."""

    dropped: range  # rows left out: a silence in the middle of a stint on one cell
    moved: range  # rows whose serving cell was set to ``NEW_CELL``


#: A serving cell no real file names (hex: CICV5G's ``cellid`` must be).
NEW_CELL: Final = "ABCDEF0123"


def _stint(cells: list[str], start: int, length: int) -> int:
    """The first row from ``start`` on where ``length`` rows and one either side share a cell,
    so that dropping or moving them changes nothing else."""
    for i in range(max(start, 1), len(cells) - length - 1):
        if len(set(cells[i - 1:i + length + 1])) == 1:
            return i
    raise ValueError("no stint long enough to perturb")


def perturbed_copy(fmt: Fmt, path: Path, out: Path) -> tuple[Path, Perturbation]:
    """``path`` with a block of rows dropped at a third of the file (CICV5G 60 rows, ~3 s;
    G-NetTrack 6 rows, ~6 s: an outage either way) and a later block moved to ``NEW_CELL``
    (CICV5G 40 rows, ~2 s; G-NetTrack 5 rows), each inside a stint on one cell: the truth
    then has those rows fewer and two cell changes more. Written to ``out`` (a temporary
    folder)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header, data = lines[0], [line for line in lines[1:] if line.strip()]
    if fmt == "cicv5g":
        split, join, drop_n, move_n = str.split, " ".join, 60, 40
        cell_at = [7]
    else:
        delimiter = "\t" if "\t" in header else ","
        names = next(csv.reader([header], delimiter=delimiter))

        def split(line: str) -> list[str]:
            return next(csv.reader([line], delimiter=delimiter))

        def join(fields: list[str]) -> str:
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(fields)
            return buffer.getvalue()

        drop_n, move_n = 6, 5
        cell_at = [names.index(n) for n in ("RAWCELLID", "CellID") if n in names]
    rows = [split(line) for line in data]
    cells = [next((r[i] for i in cell_at if len(r) > i and r[i] not in _MISSING), "")
             for r in rows]
    dropped = range(d := _stint(cells, len(rows) // 3, drop_n), d + drop_n)
    moved = range(m := _stint(cells, 2 * len(rows) // 3, move_n), m + move_n)
    for i in moved:
        rows[i][cell_at[0]] = NEW_CELL
    kept = [join(r) for i, r in enumerate(rows) if i not in dropped]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    return out, Perturbation(dropped, moved)
