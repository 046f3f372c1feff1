"""What the drive-test views need from one drive log, gathered in the report's one scan.

Drive-test engineers read a drive as TEMS, Nemo or G-NetTrack show it: the route coloured by a
measure, a table per serving cell, signal and RTT over time with the events marked, and the
events themselves. All of it comes from the raw link and state rows, batch by batch, in
bounded memory whatever the log's length:

- per cell: counts, time served and two ``Quantiles`` (exact to ``EXACT_MAX`` values, the one
  rule of every published percentile);
- the route: each measure averaged over squares of ``ROUTE_BIN_DEG`` degrees (~11 m), so a
  day of driving one road stays one road's worth of squares;
- over time: per (vehicle, link) buckets that double in width whenever there are more than
  ``2 × SERIES_POINTS`` (a drive of any length is drawn from at most that many points);
- events found in the data (cell changes, reporting gaps), up to ``EVENTS_MAX`` listed per
  log, the rest counted.

A sample repeated right after itself (a QoS 1 redelivery: same stream, same ``seq``) counts
once. A drive is one vehicle's rows in one log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa

from l4mon.faces.report.histogram import RTT_HIGH_MS
from l4mon.faces.report.keys import Keys
from telemetry.quantiles import Quantiles

#: Columns the views read beside the scan's own (aggregate._COLUMNS).
VIEW_COLUMNS: Final = ["rat", "cell_id", "rsrp_dbm", "sinr_db", "lat", "lon"]
#: measure key -> (column, label, unit): what the route can be coloured by.
MEASURES: Final = {"rsrp": ("rsrp_dbm", "RSRP", "dBm"), "sinr": ("sinr_db", "SINR", "dB"),
                   "rtt": ("rtt_ms", "RTT", "ms"), "ul": ("ul_kbps", "Uplink", "kbit/s")}
ROUTE_BIN_DEG: Final = 1e-4
SERIES_POINTS: Final = 300
#: A stream silent this long between two samples has a reporting gap (an event).
GAP_S: Final = 5.0
#: A position older than this is no position for a link sample.
POSITION_MAX_AGE_S: Final = 5.0
EVENTS_MAX: Final = 20_000
#: Time served: the step to the stream's next sample, up to this (a longer silence is a gap).
SERVED_STEP_MAX_S: Final = GAP_S
_SERIES = ("rsrp_dbm", "sinr_db", "rtt_ms")
_LINK_SLOTS = 1_024
#: lon bins per lat bin in a square's one integer key (360° / ROUTE_BIN_DEG, rounded up)
_LON_BINS = 4_000_000


@dataclass
class CellFigures:
    """One serving cell, over every stream that was on it."""

    rats: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    samples: int = 0
    seconds: float = 0.0
    rsrp: Quantiles = field(default_factory=Quantiles)
    rtt: Quantiles = field(default_factory=lambda: Quantiles(high=RTT_HIGH_MS))

    def merge(self, other: CellFigures) -> None:
        self.rats |= other.rats
        self.links |= other.links
        self.samples += other.samples
        self.seconds += other.seconds
        self.rsrp.merge(other.rsrp)
        self.rtt.merge(other.rtt)


@dataclass
class Series:
    """One (vehicle, link) over time: per bucket of ``width`` s from ``t0``, the sums and counts
    of RSRP, SINR and RTT (means are drawn; a bucket without a value is no point). The arrays
    hold ``2 × SERIES_POINTS`` buckets from the start; the width doubles to stay within."""

    t0: float
    width: float = 1.0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(3 * 2 * SERIES_POINTS))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(3 * 2 * SERIES_POINTS,
                                                                dtype=np.int64))
    used: int = 0  # buckets up to the latest sample

    def add(self, t: np.ndarray, values: np.ndarray) -> None:
        """``values``: 3 rows (RSRP, SINR, RTT) of NaN-or-value for the times ``t``."""
        if not t.size:
            return
        size = 2 * SERIES_POINTS
        while (t.max() - self.t0) / self.width >= size:
            self._coarsen()
        idx = np.clip(((t - self.t0) / self.width).astype(np.int64), 0, size - 1)
        self.used = max(self.used, int(idx.max()) + 1)
        flat = (np.arange(3)[:, None] * size + idx[None, :]).ravel()
        v = values.ravel()
        ok = ~np.isnan(v)
        self.sums += np.bincount(flat[ok], weights=v[ok], minlength=3 * size)
        self.counts += np.bincount(flat[ok], minlength=3 * size)

    def _coarsen(self) -> None:
        size = 2 * SERIES_POINTS
        for name in ("sums", "counts"):
            grid = getattr(self, name).reshape(3, size)
            half = grid[:, 0::2] + grid[:, 1::2]
            setattr(self, name, np.concatenate([half, np.zeros_like(half)], axis=1).ravel())
        self.width *= 2
        self.used = (self.used + 1) // 2

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket mid times, 3 rows of means with NaN where a bucket has no value)."""
        size = 2 * SERIES_POINTS
        sums = self.sums.reshape(3, size)[:, :self.used]
        counts = self.counts.reshape(3, size)[:, :self.used]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        times = self.t0 + (np.arange(self.used) + 0.5) * self.width
        return times, means


@dataclass
class DriveData:
    """One drive log's share of the views."""

    cells: dict[str, CellFigures] = field(default_factory=dict)
    #: (measure, lat bin, lon bin) -> [sum, count]
    route: dict[tuple[str, int, int], list[float]] = field(default_factory=dict)
    #: measure -> link samples that carried it (0: not measured in this log)
    measured: dict[str, int] = field(default_factory=dict)
    link_samples: int = 0
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    #: vehicle -> (first, last) receive time of its rows: the drive's span
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: (time, vehicle, link, kind, from, to, detail): cell changes and gaps found in the data
    events: list[tuple[float, str, str, str, str, str, str]] = field(default_factory=list)
    events_dropped: int = 0
    #: (vehicle, link) -> cell changes counted (all of them, listed or not)
    changes: dict[tuple[str, str], int] = field(default_factory=dict)


class DriveCollector:
    """Fed every batch of the report's scan of one log; ``data`` is the result."""

    def __init__(self) -> None:
        self.data = DriveData()
        self._kinds, self._sources, self._links, self._cells = Keys(), Keys(), Keys(), Keys()
        self._rats = Keys()
        #: stream -> (last time, last cell code as written, last named cell code, last seq)
        self._last: dict[int, tuple[float, int, int, float]] = {}
        self._pos: dict[int, tuple[float, int]] = {}  # vehicle -> last (t, square id)
        #: route square code -> dense id; per measure the squares' sums and counts
        self._square: dict[int, int] = {}
        self._route_sums: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._no_cell = self._cells.id("")  # an empty cell id names no cell

    def add(self, batch: pa.RecordBatch) -> None:
        kind = self._kinds.codes(batch.column("kind"))
        recv = batch.column("recv_time").to_numpy(zero_copy_only=False)
        src = self._sources.codes(batch.column("source"))
        state_rows = np.flatnonzero(kind == self._kinds.id("state"))
        positions = self._positions(batch, state_rows, src, recv)
        link_rows = np.flatnonzero(kind == self._kinds.id("link"))
        if link_rows.size:
            self._link_rows(batch, link_rows, src[link_rows], recv[link_rows], positions)

    def _spans(self, keys: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> None:
        """Each drive's span: its vehicle's first to last link sample."""
        spans = self.data.spans
        for k, lo, hi in zip(keys.tolist(), lows.tolist(), highs.tolist(), strict=True):
            name = self._sources.names[k // _LINK_SLOTS]
            old = spans.get(name)
            spans[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    def _positions(self, batch: pa.RecordBatch, rows: np.ndarray, src: np.ndarray,
                   recv: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """vehicle code -> (times, route square ids) of its positions: the one carried from
        the last batch, then this batch's."""
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if rows.size:
            lat, lon = _floats(batch, "lat", rows), _floats(batch, "lon", rows)
            ok = ~(np.isnan(lat) | np.isnan(lon))
            vs, t = src[rows][ok], recv[rows][ok]
            order = np.argsort(vs, kind="stable")  # each vehicle's positions in time order
            vs, t = vs[order], t[order]
            squares = self._square_ids(lat[ok][order], lon[ok][order])
            bounds = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1], True]) if vs.size else \
                np.zeros(1, dtype=np.int64)
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                v = int(vs[a])
                carried = self._pos.get(v)
                mt, ms = t[a:b], squares[a:b]
                if carried is not None:
                    mt, ms = np.r_[carried[0], mt], np.r_[carried[1], ms]
                out[v] = (mt, ms)
                self._pos[v] = (float(mt[-1]), int(ms[-1]))
        for v, (t0, sq) in self._pos.items():
            if v not in out:
                out[v] = (np.array([t0]), np.array([sq], dtype=np.int64))
        return out

    def _square_ids(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Each position's route square as a dense id. A track stays in a square for many
        positions: only where it enters a new one is the square looked up."""
        code = (np.floor(lat / ROUTE_BIN_DEG).astype(np.int64) * _LON_BINS
                + np.floor(lon / ROUTE_BIN_DEG).astype(np.int64) + _LON_BINS // 2)
        if not code.size:
            return code
        heads = np.r_[True, code[1:] != code[:-1]]
        ids = np.array([self._square_id(c) for c in code[heads].tolist()], dtype=np.int64)
        return ids[np.cumsum(heads) - 1]

    def _square_id(self, code: int) -> int:
        found = self._square.get(code)
        if found is None:
            found = self._square[code] = len(self._square)
        return found

    def _link_rows(self, batch: pa.RecordBatch, rows: np.ndarray, src: np.ndarray,
                   t: np.ndarray,
                   positions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """The batch's link rows, all streams at once: sorted by stream (arrival order kept
        within one), each stream's first row joined to what the last batch left of it."""
        d = self.data
        lnk = self._links.codes(batch.column("link"))[rows]
        key = src * _LINK_SLOTS + lnk
        order = np.argsort(key, kind="stable")
        rows, key, t = rows[order], key[order], t[order]
        seq = _floats(batch, "seq", rows)
        starts, carry = self._carry(key)
        prev_seq = np.r_[math.nan, seq[:-1]]
        prev_seq[starts] = [c[3] for c in carry]
        fresh = prev_seq != seq  # a redelivery right after its original counts once
        if not fresh.all():
            rows, key, t, seq = rows[fresh], key[fresh], t[fresh], seq[fresh]
            starts, carry = self._carry(key)
        n = t.size
        if not n:
            return
        cell = self._cells.codes(batch.column("cell_id"))[rows]
        cell[cell == self._no_cell] = -1
        rat = self._rats.codes(batch.column("rat"))[rows]
        figures = {name: _floats(batch, name, rows) for name in
                   ("rsrp_dbm", "sinr_db", "rtt_ms", "ul_kbps")}
        d.link_samples += n
        for measure, (column, _, _) in MEASURES.items():
            got = int(np.count_nonzero(~np.isnan(figures[column])))
            d.measured[measure] = d.measured.get(measure, 0) + got
        lengths = np.diff(np.r_[starts, n])
        prev_t = np.r_[math.nan, t[:-1]]
        prev_t[starts] = [c[0] for c in carry]
        step = t - prev_t
        prev_cell = np.r_[-1, cell[:-1]]
        prev_cell[starts] = [c[1] for c in carry]
        # a sample's cell served it until the stream's next sample, if that came soon
        held = np.where((step > 0) & (step <= SERVED_STEP_MAX_S), step, 0.0)
        self._cell_figures(cell, rat, key % _LINK_SLOTS, figures, held, prev_cell)
        # the last cell named before each row, within its stream (else the carried one)
        pos = np.arange(n)
        named_at = np.maximum.accumulate(np.where(cell >= 0, pos, -1))
        before_at = np.r_[-1, named_at[:-1]]
        stream_start = np.repeat(starts, lengths)
        carried_named = np.repeat(np.array([c[2] for c in carry], dtype=np.int64), lengths)
        before = np.where(before_at >= stream_start, cell[np.maximum(before_at, 0)],
                          carried_named)
        changed = (cell >= 0) & (before >= 0) & (cell != before)
        self._events(key, t, cell, before, changed, step)
        ends = np.r_[starts[1:], n] - 1
        self._spans(key[starts], np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts))
        for i, (k, e) in enumerate(zip(key[starts].tolist(), ends.tolist(), strict=True)):
            last_named = int(cell[named_at[e]]) if named_at[e] >= starts[i] else carry[i][2]
            self._last[k] = (float(t[e]), int(cell[e]), last_named, float(seq[e]))
            series = d.series.get(self._stream_name(k))
            if series is None:
                series = d.series[self._stream_name(k)] = Series(t0=float(t[starts[i]]))
            series.add(t[starts[i]:e + 1], np.vstack([figures[c][starts[i]:e + 1]
                                                     for c in _SERIES]))
        self._route(key // _LINK_SLOTS, t, figures, positions)

    def _carry(self, key: np.ndarray) -> tuple[np.ndarray, list[tuple[float, int, int, float]]]:
        """Where each stream starts in ``key`` (sorted), and what the last batch left of it."""
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else \
            np.zeros(0, dtype=np.int64)
        none = (math.nan, -1, -1, math.nan)
        return starts, [self._last.get(k, none) for k in key[starts].tolist()]

    def _stream_name(self, key: int) -> tuple[str, str]:
        return self._sources.names[key // _LINK_SLOTS], self._links.names[key % _LINK_SLOTS]

    def _cell_figures(self, cell: np.ndarray, rat: np.ndarray, link: np.ndarray,
                      figures: dict[str, np.ndarray], held: np.ndarray,
                      prev_cell: np.ndarray) -> None:
        cells, names = self.data.cells, self._cells.names
        served = prev_cell >= 0
        seconds = np.bincount(prev_cell[served], weights=held[served])
        for c in np.flatnonzero(seconds).tolist():
            cells.setdefault(names[c], CellFigures()).seconds += float(seconds[c])
        on = np.flatnonzero(cell >= 0)
        if not on.size:
            return
        order = on[np.argsort(cell[on], kind="stable")]
        codes = cell[order]
        bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
        rsrp, rtt = figures["rsrp_dbm"][order], figures["rtt_ms"][order]
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            acc = cells.get(names[int(codes[a])])
            if acc is None:
                acc = cells[names[int(codes[a])]] = CellFigures()
            mine = order[a:b]
            acc.samples += b - a
            # which links and RATs served it: counts, not a sort (a batch has ~100k rows)
            acc.links.update(self._links.names[x] for x in
                             np.flatnonzero(np.bincount(link[mine])).tolist())
            acc.rats.update(self._rats.names[x - 1] for x in
                            np.flatnonzero(np.bincount(rat[mine] + 1)).tolist()
                            if x > 0 and self._rats.names[x - 1])
            for q, values in ((acc.rsrp, rsrp[a:b]), (acc.rtt, rtt[a:b])):
                q.add_many(values[~np.isnan(values)])

    def _events(self, key: np.ndarray, t: np.ndarray, cell: np.ndarray, before: np.ndarray,
                changed: np.ndarray, step: np.ndarray) -> None:
        """Gaps and cell changes (a row without a cell is a gap in reporting, not a change:
        ``before`` is the last cell named before each row)."""
        d = self.data
        names = self._cells.names
        found: list[tuple[float, str, str, str, str, str, str]] = []
        for i in np.flatnonzero(step > GAP_S).tolist():
            vehicle, link = self._stream_name(int(key[i]))
            found.append((float(t[i] - step[i]), vehicle, link, "gap", "", "",
                          f"no sample for {step[i]:.1f} s"))
        for i in np.flatnonzero(changed).tolist():
            stream = self._stream_name(int(key[i]))
            d.changes[stream] = d.changes.get(stream, 0) + 1
            found.append((float(t[i]), *stream, "cell change", names[int(before[i])],
                          names[int(cell[i])], ""))
        room = max(0, EVENTS_MAX - len(d.events))
        d.events += found[:room]
        d.events_dropped += max(0, len(found) - room)

    def _route(self, vehicle: np.ndarray, t: np.ndarray, figures: dict[str, np.ndarray],
               positions: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Each sample at its vehicle's last position (at most ``POSITION_MAX_AGE_S`` old),
        added to its square's sums. Rows are sorted by vehicle: each one's rows are a run."""
        square = np.full(t.size, -1, dtype=np.int64)
        bounds = np.flatnonzero(np.r_[True, vehicle[1:] != vehicle[:-1], True])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            found = positions.get(int(vehicle[a]))
            if found is None:
                continue
            pt, psq = found
            mine = t[a:b]
            at = np.searchsorted(pt, mine, side="right") - 1
            ok = (at >= 0) & (mine - pt[np.maximum(at, 0)] <= POSITION_MAX_AGE_S)
            square[a:b] = np.where(ok, psq[np.maximum(at, 0)], -1)
        placed = square >= 0
        if not placed.any():
            return
        n = len(self._square)
        for measure, (column, _, _) in MEASURES.items():
            values = figures[column]
            has = placed & ~np.isnan(values)
            if not has.any():
                continue
            sums, counts = self._route_sums.get(measure, (np.zeros(0), np.zeros(0, np.int64)))
            if sums.size < n:
                grow = (0, n - sums.size)
                sums, counts = np.pad(sums, grow), np.pad(counts, grow)
            sums += np.bincount(square[has], weights=values[has], minlength=n)
            counts += np.bincount(square[has], minlength=n)
            self._route_sums[measure] = (sums, counts)

    def result(self) -> DriveData:
        """The log's share, its route squares named by their bins (call after the scan)."""
        codes = list(self._square)
        for measure, (sums, counts) in self._route_sums.items():
            for j in np.flatnonzero(counts).tolist():
                lat_bin, lon_code = divmod(codes[j], _LON_BINS)
                self.data.route[(measure, lat_bin, lon_code - _LON_BINS // 2)] = [
                    float(sums[j]), int(counts[j])]
        self._route_sums = {}
        return self.data


def _floats(batch: pa.RecordBatch, name: str, rows: np.ndarray) -> np.ndarray:
    """A numeric column at ``rows`` as float64, null → NaN (the whole column converted, then
    indexed: cheaper than Arrow's take for most of a batch)."""
    column = batch.column(name).to_numpy(zero_copy_only=False)
    return column.astype(np.float64, copy=False)[rows]


