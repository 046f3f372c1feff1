"""A link map at rest: a directory of two Parquet tables and a manifest.

```
MAP/
  manifest.json     schema l4mon-link-map v3, the grid (frame, origin, cell size), counts
  cells.parquet     one row per (cell, link, weather, light): counts, times, quantiles, shares,
                    and each distribution's sketch (bins and counts) so the map can be merged
  drives.parquet    one row per drive that went in: id, vehicle, log, source, conditions, span
```

Plain Parquet, so DuckDB or pyarrow read it as it is (docs/linkmap.md). Each file is
written to a temporary name and renamed, the manifest last: a crash mid-write leaves the old
map readable or a directory without a manifest, never a half map that looks whole.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from telemetry.linkmap.cellstats import COUNTS, SKETCHES, TIMES, CellStats
from telemetry.linkmap.grid import Grid
from telemetry.linkmap.model import (
    FRAME,
    FRAME_SINCE,
    IMPAIRED_SHORT_SINCE,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Drive,
    LinkMap,
    LinkMapError,
)
from telemetry.linkmap.sketch import Sketch

log = logging.getLogger("l4mon.linkmap")

MANIFEST: Final = "manifest.json"
CELLS: Final = "cells.parquet"
DRIVES: Final = "drives.parquet"

_STR = pa.dictionary(pa.int32(), pa.string())
_F = pa.float64()
_I = pa.int64()
#: Figures derived from the counts on writing, for readers; a merge recomputes them.
DERIVED: Final = [
    ("rtt_coverage", _F), ("rtt_p50_ms", _F), ("rtt_p95_ms", _F), ("rtt_p99_ms", _F),
    ("time_judged_s", _F), ("share_degraded", _F), ("share_down", _F),
    ("pass_share_degraded", _F), ("pass_share_down", _F), ("pass_share_impaired", _F),
    ("pass_share_ul_short", _F), ("pass_share_unfit", _F),
    ("rsrp_p05_dbm", _F), ("rsrp_p50_dbm", _F), ("rsrp_p95_dbm", _F),
    ("sinr_p05_db", _F), ("sinr_p50_db", _F), ("sinr_p95_db", _F),
    ("ul_samples", _I), ("ul_p05_kbps", _F), ("ul_p50_kbps", _F), ("ul_p95_kbps", _F),
    ("share_ul_short", _F),
]
CELL_SCHEMA: Final = pa.schema([
    ("cell_x", pa.int32()), ("cell_y", pa.int32()), ("lat", _F), ("lon", _F),
    ("link", _STR), ("weather", _STR), ("light", _STR),
    *[(name, _I) for name in COUNTS], *[(name, _F) for name in TIMES], *DERIVED,
    ("handover_cells", pa.list_(pa.string())), ("handover_cell_counts", pa.list_(_I)),
    *[(f"{name}_{part}", pa.list_(pa.int32() if part == "bins" else _I))
      for name in SKETCHES for part in ("bins", "counts")],
], metadata={"schema": SCHEMA_NAME, "version": str(SCHEMA_VERSION)})
DRIVE_SCHEMA: Final = pa.schema([
    ("id", pa.string()), ("vehicle", pa.string()), ("log", pa.string()), ("source", _STR),
    ("site", _STR), ("weather", _STR), ("light", _STR), ("start", _F), ("end", _F),
    ("samples", _I),
])


class MapManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    schema: str
    version: int
    origin_lat: float
    origin_lon: float
    cell_m: float
    frame: str = ""  # "" before v3: those maps were on a sphere
    rows: int = 0
    drives: int = 0
    links: list[str] = []
    conditions: list[str] = []  # "weather/light"
    created_at: float | None = None


def _derived(s: CellStats) -> dict[str, Any]:
    rtt50, rtt95, rtt99 = s.rtt.percentiles(50, 95, 99)
    r05, r50, r95 = s.rsrp.percentiles(5, 50, 95)
    n05, n50, n95 = s.sinr.percentiles(5, 50, 95)
    u05, u50, u95 = s.ul.percentiles(5, 50, 95)
    return {
        "rtt_coverage": s.rtt_coverage(), "rtt_p50_ms": rtt50, "rtt_p95_ms": rtt95,
        "rtt_p99_ms": rtt99, "time_judged_s": s.time_judged_s,
        "share_degraded": s.share_degraded(), "share_down": s.share_down(),
        "pass_share_degraded": s.pass_share("passes_degraded"),
        "pass_share_down": s.pass_share("passes_down"),
        "pass_share_impaired": s.pass_share("passes_impaired"),
        "pass_share_ul_short": s.pass_share("passes_ul_short"),
        "pass_share_unfit": s.pass_share("passes_unfit"),
        "rsrp_p05_dbm": r05, "rsrp_p50_dbm": r50, "rsrp_p95_dbm": r95,
        "sinr_p05_db": n05, "sinr_p50_db": n50, "sinr_p95_db": n95,
        "ul_samples": s.ul.n, "ul_p05_kbps": u05, "ul_p50_kbps": u50, "ul_p95_kbps": u95,
        "share_ul_short": s.share_ul_short(),
    }


def cell_table(linkmap: LinkMap) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in CELL_SCHEMA.names}
    for (x, y, link, weather, light), stats in linkmap.items():
        lat, lon = linkmap.grid.centre((x, y))
        row: dict[str, Any] = {"cell_x": x, "cell_y": y, "lat": lat, "lon": lon, "link": link,
                               "weather": weather, "light": light}
        for name in COUNTS:
            row[name] = getattr(stats, name)
        row["drives"] = stats.drive_count
        for name in TIMES:
            row[name] = getattr(stats, name)
        row.update(_derived(stats))
        pairs = sorted(stats.pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        row["handover_cells"] = [p for p, _ in pairs]
        row["handover_cell_counts"] = [c for _, c in pairs]
        for name in SKETCHES:
            bins, counts = getattr(stats, name).to_lists()
            row[f"{name}_bins"], row[f"{name}_counts"] = bins, counts
        for name in CELL_SCHEMA.names:
            columns[name].append(row[name])
    return pa.Table.from_pydict(columns, schema=CELL_SCHEMA)


def drive_table(linkmap: LinkMap) -> pa.Table:
    drives = [msgspec.to_builtins(d) for _, d in sorted(linkmap.drives.items())]
    return pa.Table.from_pylist(drives, schema=DRIVE_SCHEMA)


def write_map(path: str | Path, linkmap: LinkMap) -> MapManifest:
    """Write (or replace) the map at ``path``, a directory."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise LinkMapError(f"{root}: exists and is not a directory (a map is a directory)")
    root.mkdir(parents=True, exist_ok=True)
    for name, table in ((CELLS, cell_table(linkmap)), (DRIVES, drive_table(linkmap))):
        tmp = root / (name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(root / name)
    grid = linkmap.grid
    manifest = MapManifest(
        schema=SCHEMA_NAME, version=SCHEMA_VERSION, origin_lat=grid.origin_lat,
        origin_lon=grid.origin_lon, cell_m=grid.cell_m, frame=FRAME, rows=len(linkmap.rows),
        drives=len(linkmap.drives), links=linkmap.links(),
        conditions=[f"{w}/{li}" for w, li in linkmap.conditions()], created_at=time.time())
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2))
    tmp.replace(root / MANIFEST)
    return manifest


def read_manifest(path: str | Path) -> MapManifest:
    root = Path(path)
    if not root.exists():
        raise LinkMapError(f"{path}: no such map (a directory written by l4mon linkmap build)")
    try:
        raw = msgspec.json.decode((root / MANIFEST).read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        raise LinkMapError(f"{path}: not a link map (no {MANIFEST})") from None
    except msgspec.DecodeError as error:
        raise LinkMapError(f"{root / MANIFEST}: {error}") from None
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if schema != SCHEMA_NAME:
        raise LinkMapError(f"{path}: not a link map (its manifest is of {schema!r})")
    try:
        manifest = msgspec.convert(raw, MapManifest)
    except msgspec.ValidationError as error:
        raise LinkMapError(f"{root / MANIFEST}: {error}") from None
    if manifest.version > SCHEMA_VERSION:
        raise LinkMapError(f"{path}: {SCHEMA_NAME} v{manifest.version} is newer than this "
                           f"l4mon reads (v{SCHEMA_VERSION})")
    if manifest.version < FRAME_SINCE or manifest.frame != FRAME:
        raise LinkMapError(_other_frame(root, manifest))
    return manifest


def _other_frame(root: Path, manifest: MapManifest) -> str:
    """Why a map on another frame is refused, and the command that rebuilds it."""
    was = (f"v{manifest.version}, whose cells are on a spherical Earth"
           if manifest.version < FRAME_SINCE else f"frame {manifest.frame or 'unnamed'!r}")
    try:
        logs = sorted({str(log) for log in pq.read_table(root / DRIVES,
                                                         columns=["log"])["log"].to_pylist()})
    except (pa.ArrowInvalid, OSError, KeyError):
        logs = []
    again = (f"l4mon linkmap build {' '.join(logs)} --out NEW_MAP" if logs
             else "l4mon linkmap build LOG... --out NEW_MAP")
    return (f"{root}: a link map of {was}; this l4mon places cells on the WGS84 ellipsoid "
            f"({FRAME}), tens of metres away at a few km (29-62 m at 10 km), so the map is "
            f"not read rather than misplaced. Rebuild it from its drive logs: {again}")


def read_map(path: str | Path) -> LinkMap:
    """The map at ``path``, ready to look up or to merge more drives into."""
    manifest = read_manifest(path)
    root = Path(path)
    if manifest.version < IMPAIRED_SHORT_SINCE:
        log.warning("%s: a v%d link map counts a pass short of uplink as fit under the "
                    "measure 'impaired' (the warning's default): rebuild it with l4mon "
                    "linkmap build, or set [linkmap] measure = \"unfit\" meanwhile",
                    path, manifest.version)
    try:
        cells = pq.read_table(root / CELLS).to_pylist()
        drives = pq.read_table(root / DRIVES).to_pylist()
    except (pa.ArrowInvalid, OSError) as error:
        raise LinkMapError(f"{path}: unreadable map table: {error}") from None
    linkmap = LinkMap(Grid(manifest.origin_lat, manifest.origin_lon, manifest.cell_m))
    for row in cells:
        stats = linkmap.row((row["cell_x"], row["cell_y"]), row["link"], row["weather"],
                            row["light"])
        for name in COUNTS:
            setattr(stats, name, int(row.get(name) or 0))
        for name in TIMES:
            setattr(stats, name, float(row[name] or 0.0))
        for name, scale in SKETCHES.items():
            setattr(stats, name, Sketch.from_lists(scale, row[f"{name}_bins"],
                                                   row[f"{name}_counts"]))
        stats.pairs = dict(zip(row["handover_cells"] or [], row["handover_cell_counts"] or [],
                               strict=True))
    for row in drives:
        drive = msgspec.convert(row, Drive)
        linkmap.drives[drive.id] = drive
    return linkmap
