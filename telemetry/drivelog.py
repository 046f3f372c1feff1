"""Drive logs: wire messages at rest, as Parquet (schema ``l4mon-drive-log`` v1).

A log is a directory: ``manifest.json`` (site, vehicles, conditions, source) and one or more
Parquet files below it (any depth, so a recorder may partition by day and hour). Every file has
the same wide schema, one row per message with a ``kind`` column; the columns a kind does not
use are null, which Parquet stores almost for free. See docs/drive-log.md.

Rows keep the wire values as they were, so a replay re-encodes each row into the message the
hub once received and feeds it through the same ``Hub.ingest``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from telemetry import topics
from telemetry.topics import Route
from telemetry.wire import LinkSample, Message, RsuStatus, VehicleEvent, VehicleState

SCHEMA_NAME: Final = "l4mon-drive-log"
SCHEMA_VERSION: Final = 1
MANIFEST: Final = "manifest.json"

Weather = Literal["clear", "cloudy", "rain", "snow", "fog", "unknown"]
Light = Literal["daylight", "dusk", "night", "unknown"]
Road = Literal["dry", "wet", "snow", "ice", "unknown"]

_STR = pa.dictionary(pa.int32(), pa.string())
SCHEMA: Final = pa.schema([
    ("recv_time", pa.float64()),  # hub receive time (imports: the source's own time)
    ("kind", _STR),  # state | link | event | rsu
    ("site", _STR),
    ("source", _STR),  # vehicle id, or RSU id for kind rsu
    ("link", _STR),
    ("ts", pa.float64()),
    ("seq", pa.int64()),
    # state
    ("lat", pa.float64()), ("lon", pa.float64()), ("speed_mps", pa.float64()),
    ("heading_deg", pa.float64()), ("mode", _STR), ("v2i_rx", pa.string()),  # JSON object
    # link
    ("rat", _STR), ("cell_id", _STR), ("rsrp_dbm", pa.float64()), ("rsrq_db", pa.float64()),
    ("sinr_db", pa.float64()), ("rtt_ms", pa.float64()), ("ul_kbps", pa.float64()),
    ("dl_kbps", pa.float64()),
    # event
    ("event_kind", _STR), ("detail", pa.string()),
    # rsu
    ("intersection", _STR), ("health", _STR), ("boot_id", _STR), ("tx_msgs", pa.int64()),
    ("rx_msgs", pa.int64()), ("backhaul_rtt_ms", pa.float64()), ("cpu_pct", pa.float64()),
    # what arrived, verbatim, when the log was recorded (null for imports): replay feeds these
    # exact bytes, and reads three columns instead of thirty
    ("topic", _STR), ("payload", pa.binary()),
], metadata={"schema": SCHEMA_NAME, "version": str(SCHEMA_VERSION)})
COLUMNS: Final = SCHEMA.names


class DriveLogError(ValueError):
    """A log that is missing, of another schema, or not what it claims to be."""


class Conditions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the drive was like: the tags reports split every figure by."""

    weather: Weather = "unknown"
    light: Light = "unknown"
    road: Road = "unknown"

    def tags(self) -> list[str]:
        return [v for v in (self.weather, self.light, self.road) if v != "unknown"]


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    schema: str = SCHEMA_NAME
    version: int = SCHEMA_VERSION
    site: str = ""
    vehicles: list[str] = []
    conditions: Conditions = Conditions()
    #: Where the data came from: {"kind": "recorder" | "gnettrack" | "cicv5g" | "generator",
    #: "files": [...], "citation": "...", "licence": "..."} (free-form strings).
    source: dict[str, Any] = {}
    created_at: float | None = None
    start: float | None = None
    end: float | None = None
    messages: int = 0


def _row(recv_time: float, route: Route, msg: Message) -> dict[str, Any]:
    row: dict[str, Any] = {"recv_time": recv_time, "kind": route.kind, "site": route.site,
                           "source": route.source, "link": route.link, "ts": msg.ts,
                           "seq": msg.seq}
    if isinstance(msg, LinkSample):
        row.update(rat=msg.rat, cell_id=msg.cell_id, rsrp_dbm=msg.rsrp_dbm,
                   rsrq_db=msg.rsrq_db, sinr_db=msg.sinr_db, rtt_ms=msg.rtt_ms,
                   ul_kbps=msg.ul_kbps, dl_kbps=msg.dl_kbps)
    elif isinstance(msg, VehicleState):
        row.update(lat=msg.lat, lon=msg.lon, speed_mps=msg.speed_mps,
                   heading_deg=msg.heading_deg, mode=msg.mode,
                   v2i_rx=None if msg.v2i_rx is None else json.dumps(msg.v2i_rx, sort_keys=True))
    elif isinstance(msg, VehicleEvent):
        row.update(event_kind=msg.kind, detail=msg.detail)
    elif isinstance(msg, RsuStatus):
        row.update(intersection=msg.intersection, health=msg.health, boot_id=msg.boot_id,
                   tx_msgs=msg.tx_msgs, rx_msgs=msg.rx_msgs,
                   backhaul_rtt_ms=msg.backhaul_rtt_ms, cpu_pct=msg.cpu_pct)
    return row


@dataclass
class DriveLogWriter:
    """Writes rows to ``path`` in files of at most ``rows_per_file`` rows.

    ``subdir`` (e.g. ``"date=2026-11-22/hour=02"``) lets a recorder partition a long recording
    so that a day of a fleet stays a set of manageable files.
    """

    path: Path
    manifest: Manifest = field(default_factory=Manifest)
    rows_per_file: int = 500_000
    #: Where files go below ``path`` (e.g. "date=2026-11-22/hour=02"); None for the top.
    subdir: str | None = None
    _columns: dict[str, list[Any]] = field(default_factory=dict)
    _rows: int = 0
    _files: int = 0
    _total: int = 0
    _start: float | None = None
    _end: float | None = None
    _vehicles: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._files = len(list(self.path.rglob("*.parquet")))
        self._reset()

    def _reset(self) -> None:
        self._columns = {name: [] for name in COLUMNS}
        self._rows = 0

    def add(self, recv_time: float, route: Route, msg: Message, *, topic: str | None = None,
            payload: bytes | None = None) -> None:
        """One message; ``topic`` and ``payload`` as received, when there was a receipt."""
        row = _row(recv_time, route, msg)
        row["topic"] = topic
        row["payload"] = payload
        columns = self._columns
        for name in COLUMNS:
            columns[name].append(row.get(name))
        self._rows += 1
        self._total += 1
        self._start = recv_time if self._start is None else min(self._start, recv_time)
        self._end = recv_time if self._end is None else max(self._end, recv_time)
        if route.kind != "rsu":
            self._vehicles.add(route.source)
        if self._rows >= self.rows_per_file:
            self.flush()

    def add_all(self, messages: Iterable[tuple[float, Route, Message]]) -> None:
        for recv_time, route, msg in messages:
            self.add(recv_time, route, msg)

    def flush(self) -> Path | None:
        """Write what is buffered as one Parquet file; returns its path (None if empty)."""
        if not self._rows:
            return None
        table = pa.Table.from_pydict(self._columns, schema=SCHEMA)
        folder = self.path / self.subdir if self.subdir else self.path
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"part-{self._files:06d}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(target)  # a crash mid-write never leaves a half file that looks whole
        self._files += 1
        self._reset()
        return target

    def close(self) -> Manifest:
        """Flush and write the manifest (merging what an earlier writer recorded)."""
        self.flush()
        previous = read_manifest(self.path) if (self.path / MANIFEST).exists() else None
        start = [t for t in (self._start, previous.start if previous else None) if t is not None]
        end = [t for t in (self._end, previous.end if previous else None) if t is not None]
        manifest = msgspec.structs.replace(
            self.manifest,
            vehicles=sorted(self._vehicles | set(self.manifest.vehicles)
                            | set(previous.vehicles if previous else [])),
            created_at=self.manifest.created_at or time.time(),
            start=min(start) if start else None, end=max(end) if end else None,
            messages=self._total + (previous.messages if previous else 0),
        )
        write_manifest(self.path, manifest)
        return manifest


def write_manifest(path: Path, manifest: Manifest) -> None:
    tmp = Path(path) / (MANIFEST + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2))
    tmp.replace(Path(path) / MANIFEST)


def read_manifest(path: str | Path) -> Manifest:
    file = Path(path) / MANIFEST
    try:
        manifest = msgspec.json.decode(file.read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise DriveLogError(f"{path}: not a drive log (no {MANIFEST})") from None
    except msgspec.DecodeError as error:
        raise DriveLogError(f"{file}: {error}") from None
    if manifest.schema != SCHEMA_NAME or manifest.version > SCHEMA_VERSION:
        raise DriveLogError(f"{path}: schema {manifest.schema} v{manifest.version} is not "
                            f"{SCHEMA_NAME} v<={SCHEMA_VERSION}")
    return manifest


def read_table(path: str | Path) -> pa.Table:
    """All rows of the log at ``path``, ordered by receive time (stable within equal times)."""
    root = Path(path)
    read_manifest(root)
    files = sorted(str(p) for p in root.rglob("*.parquet"))
    if not files:
        return SCHEMA.empty_table()
    try:
        table = ds.dataset(files, schema=SCHEMA, format="parquet").to_table()
    except (pa.ArrowInvalid, OSError) as error:
        raise DriveLogError(f"{path}: unreadable Parquet: {error}") from None
    return table.take(pa.compute.sort_indices(
        table, sort_keys=[("recv_time", "ascending")]))  # stable sort


_ENCODE = msgspec.json.Encoder()


def wire_messages(table: pa.Table) -> Iterator[tuple[float, str, bytes]]:
    """Each row as (receive time, topic, payload): what the hub received.

    Rows recorded with their payload give those bytes back; others (imports) are encoded as
    JSON from their columns, which only costs where it is needed.
    """
    times = table.column("recv_time").to_pylist()
    recorded_topics = table.column("topic").to_pylist()
    payloads = table.column("payload").to_pylist()
    missing = [i for i, p in enumerate(payloads) if p is None]
    if not missing:
        yield from zip(times, recorded_topics, payloads, strict=True)
        return
    rebuilt = dict(_encoded(table.take(missing), missing))
    for i, (at, topic, payload) in enumerate(zip(times, recorded_topics, payloads,
                                                 strict=True)):
        if payload is None:
            yield rebuilt[i]
        else:
            yield at, topic, payload


def _encoded(table: pa.Table, rows: list[int]) -> Iterator[tuple[int, tuple[float, str, bytes]]]:
    """(row index, delivery) for rows without a recorded payload."""
    cols = {name: table.column(name).to_pylist() for name in COLUMNS}
    encode = _ENCODE.encode
    for i, row in enumerate(rows):
        kind, site, source = cols["kind"][i], cols["site"][i], cols["source"][i]
        ts, seq = cols["ts"][i], cols["seq"][i]
        msg: Message
        if kind == "link":
            topic = topics.link_topic(site, source, cols["link"][i])
            msg = LinkSample(ts=ts, seq=seq, rat=cols["rat"][i], cell_id=cols["cell_id"][i],
                             rsrp_dbm=cols["rsrp_dbm"][i], rsrq_db=cols["rsrq_db"][i],
                             sinr_db=cols["sinr_db"][i], rtt_ms=cols["rtt_ms"][i],
                             ul_kbps=cols["ul_kbps"][i], dl_kbps=cols["dl_kbps"][i])
        elif kind == "state":
            topic = topics.state_topic(site, source)
            v2i = cols["v2i_rx"][i]
            msg = VehicleState(ts=ts, seq=seq, lat=cols["lat"][i], lon=cols["lon"][i],
                               speed_mps=cols["speed_mps"][i],
                               heading_deg=cols["heading_deg"][i], mode=cols["mode"][i],
                               v2i_rx=None if v2i is None else json.loads(v2i))
        elif kind == "event":
            topic = topics.event_topic(site, source)
            msg = VehicleEvent(ts=ts, kind=cols["event_kind"][i], seq=seq,
                               detail=cols["detail"][i])
        elif kind == "rsu":
            topic = topics.rsu_topic(site, source)
            msg = RsuStatus(ts=ts, seq=seq, intersection=cols["intersection"][i],
                            health=cols["health"][i], boot_id=cols["boot_id"][i],
                            tx_msgs=cols["tx_msgs"][i], rx_msgs=cols["rx_msgs"][i],
                            backhaul_rtt_ms=cols["backhaul_rtt_ms"][i],
                            cpu_pct=cols["cpu_pct"][i])
        else:
            raise DriveLogError(f"row {row}: unknown kind {kind!r}")
        yield row, (cols["recv_time"][i], topic, encode(msg))
