"""Drive logs: wire messages at rest, as Parquet (schema ``l4mon-drive-log`` v1).

A log is a directory: ``manifest.json`` (site, vehicles, conditions, source) and one or more
Parquet files below it (any depth, so a recorder may partition by day and hour). Every file has
the same wide schema, one row per message with a ``kind`` column; the columns a kind does not
use are null, which Parquet stores almost for free. See docs/drive-log.md.

Rows keep the wire values as they were, so a replay re-encodes each row into the message the
hub once received and feeds it through the same ``Hub.ingest``. ``iter_wire_messages`` streams
them in receive-time order with memory bounded by file and batch size, so a day of a fleet
(hundreds of millions of rows) replays as well as a minute does.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from telemetry import topics
from telemetry.columns import pylist
from telemetry.topics import Route
from telemetry.wire import (
    LinkSample,
    Message,
    RsuStatus,
    ServiceStatus,
    VehicleEvent,
    VehicleState,
    Weather,
)

SCHEMA_NAME: Final = "l4mon-drive-log"
#: 2 added the link columns ``probe`` and ``sender_clock`` (v1 logs read as both true, which
#: is what their rows meant) and ``content_type`` (v1 recordings dropped it, so their
#: MessagePack payloads cannot be replayed); a reader of version 1 would silently drop them,
#: so it must refuse.
SCHEMA_VERSION: Final = 2
MANIFEST: Final = "manifest.json"

Light = Literal["daylight", "dusk", "night", "unknown"]
Road = Literal["dry", "wet", "snow", "ice", "unknown"]

_STR = pa.dictionary(pa.int32(), pa.string())
SCHEMA: Final = pa.schema([
    ("recv_time", pa.float64()),  # hub receive time (imports: the source's own time)
    ("kind", _STR),  # state | link | event | rsu | service | command | command_ack
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
    # null = true (version 1 logs): every sample a probe, ts the sender's synchronised clock
    ("probe", pa.bool_()), ("sender_clock", pa.bool_()),
    # event
    ("event_kind", _STR), ("detail", pa.string()),
    # rsu
    ("intersection", _STR), ("health", _STR), ("boot_id", _STR), ("tx_msgs", pa.int64()),
    ("rx_msgs", pa.int64()), ("backhaul_rtt_ms", pa.float64()), ("cpu_pct", pa.float64()),
    # what arrived, verbatim, when the log was recorded (null for imports): replay feeds these
    # exact bytes, and reads four columns instead of thirty
    ("topic", _STR), ("payload", pa.binary()),
    # the MQTT content type it arrived with (null: none, i.e. JSON); version 2
    ("content_type", _STR),
    # what the RSU's road weather sensor said (RsuStatus.weather); added without a version
    # bump: older logs read it as null, older readers never ask for it
    ("weather", _STR),
    # the sender's declared interval between messages of the stream (state and link:
    # ``interval_s`` on the wire); added like ``weather``, null in older logs
    ("interval_s", pa.float64()),
    # kind service (ServiceStatus): the status said (its reason is in ``detail``); added
    # like ``weather``: an older log has no service rows
    ("service", _STR),
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


class Drive(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One drive of one vehicle in a log: from its first to its last row, on these links,
    from these input files. An import says where each drive starts and ends (and its rows
    say so too: the vehicle enters service at ``start`` and leaves at ``end``), so nothing
    is counted for a vehicle between its drives."""

    vehicle: str
    start: float
    end: float
    links: list[str] = []
    files: list[str] = []

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def drive_time(drives: list[Drive], start: float | None = None,
               end: float | None = None) -> float:
    """Seconds in which at least one drive was on (within ``[start, end)`` if given): the
    hours of the data, without the pauses between drives, a stretch driven by several
    vehicles at once counted once."""
    spans = sorted((max(d.start, -math.inf if start is None else start),
                    min(d.end, math.inf if end is None else end)) for d in drives)
    total, reach = 0.0, -math.inf
    for lo, hi in spans:
        if hi <= lo:
            continue
        if lo > reach:
            total += hi - lo
        elif hi > reach:
            total += hi - reach
        reach = max(reach, hi)
    return total


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
    #: What the recording hub ran with, so a replay decides as it did (l4mon/context.py): its
    #: config without transport, HTTP, auth and journal settings, its alert rules' TOML text,
    #: its site plan. An importer may give a config too (G-NetTrack: no uplink requirement).
    hub_config: dict[str, Any] | None = None
    rules: str | None = None
    site_plan: dict[str, Any] | None = None
    #: Quantities the source does not measure at all, e.g. "loss" for an import whose seq is
    #: the importer's row number: reported as not measured, never graded.
    not_measured: list[str] = []
    #: Link figures the source wrote outside their physical range (a tool's "no value" marker
    #: such as RSRP -200 dBm), which an importer set to None: {field: {reason: count}}
    #: (telemetry/ranges.py). Per sample, not a quantity the source lacks (``not_measured``).
    fields_not_measured: dict[str, dict[str, int]] = {}
    #: Each vehicle's drives, as an import found them in its files (a recording has none: its
    #: rows say when a vehicle enters and leaves service).
    drives: list[Drive] = []
    #: The link map the recording hub looked ahead on (docs/linkmap.md): ``path``,
    #: ``fingerprint``, ``rows``, ``drives``; a replay uses it when it finds the same map.
    linkmap: dict[str, Any] | None = None


def _row(recv_time: float, route: Route, msg: Message) -> dict[str, Any]:
    row: dict[str, Any] = {"recv_time": recv_time, "kind": route.kind, "site": route.site,
                           "source": route.source, "link": route.link, "ts": msg.ts,
                           "seq": getattr(msg, "seq", None)}
    if isinstance(msg, LinkSample):
        row.update(rat=msg.rat, cell_id=msg.cell_id, rsrp_dbm=msg.rsrp_dbm,
                   rsrq_db=msg.rsrq_db, sinr_db=msg.sinr_db, rtt_ms=msg.rtt_ms,
                   ul_kbps=msg.ul_kbps, dl_kbps=msg.dl_kbps, probe=msg.probe,
                   sender_clock=msg.sender_clock, interval_s=msg.interval_s)
    elif isinstance(msg, VehicleState):
        row.update(lat=msg.lat, lon=msg.lon, speed_mps=msg.speed_mps,
                   heading_deg=msg.heading_deg, mode=msg.mode,
                   v2i_rx=None if msg.v2i_rx is None else json.dumps(msg.v2i_rx, sort_keys=True),
                   interval_s=msg.interval_s)
    elif isinstance(msg, VehicleEvent):
        row.update(event_kind=msg.kind, detail=msg.detail)
    elif isinstance(msg, ServiceStatus):
        row.update(service=msg.status, detail=msg.reason)
    elif isinstance(msg, RsuStatus):
        row.update(intersection=msg.intersection, health=msg.health, boot_id=msg.boot_id,
                   tx_msgs=msg.tx_msgs, rx_msgs=msg.rx_msgs,
                   backhaul_rtt_ms=msg.backhaul_rtt_ms, cpu_pct=msg.cpu_pct,
                   weather=msg.weather)
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
            payload: bytes | None = None, content_type: str | None = None) -> None:
        """One message; ``topic``, ``payload`` and ``content_type`` as received, when there
        was a receipt."""
        row = _row(recv_time, route, msg)
        row["topic"] = topic
        row["payload"] = payload
        row["content_type"] = content_type
        self._append(row, recv_time, None if route.kind == "rsu" else route.source)

    def add_command(self, recv_time: float, topic: str, payload: bytes, *, kind: str,
                    site: str, vehicle: str, ts: float, what: str, command_id: str) -> None:
        """A command the hub sent or a vehicle's answer to one (``kind`` ``command`` or
        ``command_ack``, docs/protocol.md "Commands"): kept as sent, so a replay carries it
        through the hub's ingest (l4mon/commands/trail.py) and publishes nothing."""
        row = {"recv_time": recv_time, "kind": kind, "site": site, "source": vehicle,
               "ts": ts, "event_kind": what, "detail": command_id, "topic": topic,
               "payload": payload}
        self._append(row, recv_time, None)

    def _append(self, row: dict[str, object], recv_time: float, vehicle: str | None) -> None:
        """One row into the columns; ``vehicle`` counted as one the log holds (a command's
        vehicle is not: it was heard, or not, by its own telemetry)."""
        columns = self._columns
        for name in COLUMNS:
            columns[name].append(row.get(name))
        self._rows += 1
        self._total += 1
        self._start = recv_time if self._start is None else min(self._start, recv_time)
        self._end = recv_time if self._end is None else max(self._end, recv_time)
        if vehicle is not None:
            self._vehicles.add(vehicle)
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
    data = msgspec.to_builtins(manifest)
    # Absent when empty, so a log without them stays readable by older l4mon, which refuses
    # fields it does not know.
    if data.get("linkmap") is None:
        data.pop("linkmap", None)
    for name in ("fields_not_measured", "drives"):
        if not data.get(name):
            data.pop(name, None)
    tmp = Path(path) / (MANIFEST + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(data), indent=2))
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
    """All rows of the log at ``path``, ordered by receive time (stable within equal times).

    The whole log in memory at once: for analyses that want a table. Replays stream with
    ``iter_wire_messages`` instead, whatever the log's size.
    """
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


#: (receive time, topic, payload, MQTT content type): one message as the hub received it.
Delivery = tuple[float, str, bytes, str | None]


def wire_messages(table: pa.Table) -> Iterator[Delivery]:
    """Each row as (receive time, topic, payload, content type): what the hub received.

    Rows recorded with their payload give those bytes back with the content type they came
    with; others (imports) are encoded as JSON from their columns, which only costs where it
    is needed.
    """
    times = pylist(table.column("recv_time"))
    recorded_topics = pylist(table.column("topic"))
    payloads = pylist(table.column("payload"))
    types = pylist(table.column("content_type")) if "content_type" in table.column_names \
        else [None] * len(times)
    missing = [i for i, p in enumerate(payloads) if p is None]
    if not missing:
        yield from zip(times, recorded_topics, payloads, types, strict=True)
        return
    rebuilt = dict(_encoded(table.take(missing), missing))
    for i, (at, topic, payload, ctype) in enumerate(zip(times, recorded_topics, payloads,
                                                        types, strict=True)):
        if payload is None:
            yield rebuilt[i]
        else:
            yield at, topic, payload, ctype


def _encoded(table: pa.Table, rows: list[int]) -> Iterator[tuple[int, tuple[float, str, bytes]]]:
    """(row index, delivery) for rows without a recorded payload."""
    cols = {name: pylist(table.column(name)) for name in COLUMNS}
    encode = _ENCODE.encode
    for i, row in enumerate(rows):
        kind, site, source = cols["kind"][i], cols["site"][i], cols["source"][i]
        ts, seq = cols["ts"][i], cols["seq"][i]
        msg: Message
        if kind == "link":
            topic = topics.link_topic(site, source, cols["link"][i])
            probe, clock = cols["probe"][i], cols["sender_clock"][i]
            msg = LinkSample(ts=ts, seq=seq, rat=cols["rat"][i], cell_id=cols["cell_id"][i],
                             rsrp_dbm=cols["rsrp_dbm"][i], rsrq_db=cols["rsrq_db"][i],
                             sinr_db=cols["sinr_db"][i], rtt_ms=cols["rtt_ms"][i],
                             ul_kbps=cols["ul_kbps"][i], dl_kbps=cols["dl_kbps"][i],
                             probe=probe is not False, sender_clock=clock is not False,
                             interval_s=cols["interval_s"][i])
        elif kind == "state":
            topic = topics.state_topic(site, source)
            v2i = cols["v2i_rx"][i]
            msg = VehicleState(ts=ts, seq=seq, lat=cols["lat"][i], lon=cols["lon"][i],
                               speed_mps=cols["speed_mps"][i],
                               heading_deg=cols["heading_deg"][i], mode=cols["mode"][i],
                               v2i_rx=None if v2i is None else json.loads(v2i),
                               interval_s=cols["interval_s"][i])
        elif kind == "event":
            topic = topics.event_topic(site, source)
            msg = VehicleEvent(ts=ts, kind=cols["event_kind"][i], seq=seq,
                               detail=cols["detail"][i])
        elif kind == "service":
            topic = topics.service_topic(site, source)
            msg = ServiceStatus(ts=ts, status=cols["service"][i], reason=cols["detail"][i])
        elif kind == "rsu":
            topic = topics.rsu_topic(site, source)
            msg = RsuStatus(ts=ts, seq=seq, intersection=cols["intersection"][i],
                            health=cols["health"][i], boot_id=cols["boot_id"][i],
                            tx_msgs=cols["tx_msgs"][i], rx_msgs=cols["rx_msgs"][i],
                            backhaul_rtt_ms=cols["backhaul_rtt_ms"][i],
                            cpu_pct=cols["cpu_pct"][i], weather=cols["weather"][i])
        else:
            raise DriveLogError(f"row {row}: unknown kind {kind!r}")
        yield row, (cols["recv_time"][i], topic, encode(msg), None)


# -- streaming: a log of any size in bounded memory ------------------------------------------

#: Rows converted to Python objects at a time by ``iter_wire_messages``: a few MB per batch,
#: and large enough that the per-batch cost (a filter, three column conversions) is noise.
BATCH_ROWS: Final = 65_536
_WIRE: Final = ("recv_time", "topic", "payload", "content_type")


@dataclass(frozen=True, slots=True)
class _Part:
    """One Parquet file of a log as its footer describes it (no row read yet)."""

    index: int  # position in path order: read_table's tie-break between equal times
    path: str
    row_groups: list[int]  # the row groups that may hold rows of the period
    low: float  # smallest and largest receive time in those row groups
    high: float
    #: Every row has its recorded payload: three columns are read instead of thirty.
    complete: bool
    columns: list[str]  # the schema's columns this file has


def iter_wire_messages(path: str | Path, *, start: float | None = None,
                       end: float | None = None,
                       batch_rows: int = BATCH_ROWS) -> Iterator[Delivery]:
    """Each row of the log with ``start <= recv_time < end`` as (receive time, topic, payload),
    in receive-time order, exactly as ``wire_messages(read_table(path))`` gives them (equal
    times keep file order, then row order) — but streamed, so memory follows the file and
    batch size, not the log's: ``read_table`` needs all of a day's 260 M rows at once.

    The manifest and every file's footer are read now (so a bad log fails here, not midway);
    rows are read as they are consumed. Files are ordered by the receive-time range their
    row-group statistics give: files whose ranges are disjoint (the recorder's and the
    generators' rolling files) are read one after the other at no per-row cost; only files
    whose ranges overlap are merged row by row (``heapq.merge``, stable). Each file must be
    in receive-time order by itself to be streamed; one that is not (checked from its
    ``recv_time`` column first) is read and sorted in memory on its own, which is bounded by
    the writer's ``rows_per_file``. Rows without a recorded payload (imports) are re-encoded
    from their columns, as ``wire_messages`` does.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be >= 1")
    root = Path(path)
    read_manifest(root)
    files = sorted(str(p) for p in root.rglob("*.parquet"))  # read_table's order
    parts = [part for index, file in enumerate(files)
             if (part := _footer(index, file, start, end)) is not None]
    return _stream(_overlapping(parts), start, end, batch_rows)


def _stream(groups: list[list[_Part]], start: float | None, end: float | None,
            batch_rows: int) -> Iterator[Delivery]:
    for group in groups:
        if len(group) == 1:
            yield from _file_rows(group[0], start, end, batch_rows)
        else:  # files in path order: merge keeps the earlier file first on equal times
            yield from heapq.merge(*(_file_rows(p, start, end, batch_rows) for p in group),
                                   key=itemgetter(0))


def _overlapping(parts: list[_Part]) -> list[list[_Part]]:
    """Files grouped so that the groups, one after the other, are in receive-time order and
    every file of a group must be merged with the others (each group in path order).

    A file starts a new group when every file before it ends earlier, or ends at its very
    first time but comes before it in path order (a batch split across two files): then
    concatenation is what a stable sort over the files in path order would give.
    """
    groups: list[list[_Part]] = []
    high, high_index = -math.inf, -1  # the group's last time, and the last file ending then
    for part in sorted(parts, key=lambda p: (p.low, p.index)):
        if groups and (part.low < high or (part.low == high and part.index < high_index)):
            groups[-1].append(part)
        else:
            groups.append([part])
            high, high_index = part.high, part.index
            continue
        if part.high > high:
            high, high_index = part.high, part.index
        elif part.high == high:
            high_index = max(high_index, part.index)
    return [sorted(group, key=lambda p: p.index) for group in groups]


def _footer(index: int, path: str, start: float | None, end: float | None) -> _Part | None:
    """The file's row groups within the period and their time range, from its statistics
    (a row group without them has its ``recv_time`` read); None if nothing is in range."""
    try:
        file = pq.ParquetFile(path)
        meta = file.metadata
        names = [meta.schema.column(j).path for j in range(meta.num_columns)]
        if "recv_time" not in names:
            raise DriveLogError(f"{path}: no recv_time column")
        at = names.index("recv_time")
        payload = names.index("payload") if "payload" in names else -1
        groups, low, high, complete = [], math.inf, -math.inf, payload >= 0
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            if not group.num_rows:
                continue
            stats = group.column(at).statistics
            if stats is not None and stats.has_null_count and stats.null_count:
                raise DriveLogError(f"{path}: rows without a recv_time")
            if stats is not None and stats.has_min_max:
                lo, hi = float(stats.min), float(stats.max)
            else:
                times = file.read_row_group(rg, columns=["recv_time"]).column(0)
                bounds = pc.min_max(times).as_py()
                lo, hi = bounds["min"], bounds["max"]
                if lo is None or hi is None or times.null_count:
                    raise DriveLogError(f"{path}: rows without a recv_time")
            if (start is not None and hi < start) or (end is not None and lo >= end):
                continue
            groups.append(rg)
            low, high = min(low, lo), max(high, hi)
            if complete:
                p_stats = group.column(payload).statistics
                complete = p_stats is not None and p_stats.has_null_count \
                    and p_stats.null_count == 0
    except (pa.ArrowInvalid, OSError) as error:
        raise DriveLogError(f"{path}: unreadable Parquet: {error}") from None
    if not groups:
        return None
    return _Part(index=index, path=path, row_groups=groups, low=low, high=high,
                 complete=complete, columns=[c for c in COLUMNS if c in names])


def _file_rows(part: _Part, start: float | None, end: float | None,
               batch_rows: int) -> Iterator[Delivery]:
    """One file's rows of the period in receive-time order (stable), a batch at a time."""
    columns = [c for c in _WIRE if c in part.columns] if part.complete else part.columns
    clip = (start is not None and part.low < start) or (end is not None and part.high >= end)
    try:
        file = pq.ParquetFile(part.path)
        times = file.read_row_groups(part.row_groups, columns=["recv_time"]).column(0)
        ordered = _ascending(times)
        del times
        if ordered:
            chunks: Iterable[pa.RecordBatch] = file.iter_batches(
                batch_size=batch_rows, row_groups=part.row_groups, columns=columns)
        else:  # not written in time order: sort this file alone, in memory
            table = _in_period(file.read_row_groups(part.row_groups, columns=columns),
                               start, end)
            table = table.take(pc.sort_indices(table, sort_keys=[("recv_time", "ascending")]))
            chunks = table.to_batches(max_chunksize=batch_rows)
            clip = False
        for chunk in chunks:
            table = pa.Table.from_batches([chunk])
            if clip:
                table = _in_period(table, start, end)
            if table.num_rows:
                yield from wire_messages(_conformed(table))
    except (pa.ArrowInvalid, OSError) as error:
        raise DriveLogError(f"{part.path}: unreadable Parquet: {error}") from None


def _ascending(times: pa.ChunkedArray) -> bool:
    """Whether the receive times never go back (NaN counts as going back)."""
    n = len(times)
    if n < 2:
        return True
    steps = pc.greater_equal(times.slice(1), times.slice(0, n - 1))
    return bool(pc.all(steps).as_py()) and steps.null_count == 0


def _in_period(table: pa.Table, start: float | None, end: float | None) -> pa.Table:
    times = table.column("recv_time")
    keep = pc.and_(pc.greater_equal(times, -math.inf if start is None else start),
                   pc.less(times, math.inf if end is None else end))
    return table.filter(keep)


def _conformed(table: pa.Table) -> pa.Table:
    """The table with the schema's columns it lacks as nulls (``_encoded`` reads them all)."""
    if "payload" in table.column_names and not table.column("payload").null_count:
        return table
    for name in COLUMNS:
        if name not in table.column_names:
            table = table.append_column(SCHEMA.field(name),
                                        pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table
