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

from l4mon.report.histogram import RTT_HIGH_MS
from l4mon.report.keys import Keys
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
    of RSRP, SINR and RTT (means are drawn; a bucket without a value is no point)."""

    t0: float
    width: float = 1.0
    sums: np.ndarray = field(default_factory=lambda: np.zeros((3, 0)))
    counts: np.ndarray = field(default_factory=lambda: np.zeros((3, 0), dtype=np.int64))

    def add(self, t: np.ndarray, values: np.ndarray) -> None:
        """``values``: 3 rows (RSRP, SINR, RTT) of NaN-or-value for the times ``t``."""
        while t.size and (t.max() - self.t0) / self.width >= 2 * SERIES_POINTS:
            self._coarsen()
        idx = ((t - self.t0) / self.width).astype(np.int64)
        idx = np.clip(idx, 0, None)
        size = int(idx.max()) + 1 if idx.size else 0
        if size > self.sums.shape[1]:
            grow = size - self.sums.shape[1]
            self.sums = np.pad(self.sums, ((0, 0), (0, grow)))
            self.counts = np.pad(self.counts, ((0, 0), (0, grow)))
        width = self.sums.shape[1]
        for row in range(3):
            ok = ~np.isnan(values[row])
            self.sums[row] += np.bincount(idx[ok], weights=values[row][ok], minlength=width)
            self.counts[row] += np.bincount(idx[ok], minlength=width)

    def _coarsen(self) -> None:
        n = self.sums.shape[1]
        if n % 2:
            self.sums = np.pad(self.sums, ((0, 0), (0, 1)))
            self.counts = np.pad(self.counts, ((0, 0), (0, 1)))
        self.sums = self.sums[:, 0::2] + self.sums[:, 1::2]
        self.counts = self.counts[:, 0::2] + self.counts[:, 1::2]
        self.width *= 2

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket mid times, 3 rows of means with NaN where a bucket has no value)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums / self.counts
        times = self.t0 + (np.arange(self.sums.shape[1]) + 0.5) * self.width
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
        #: stream -> (last time, last cell code as written, last named cell code, last seq)
        self._last: dict[int, tuple[float, int, int, float]] = {}
        #: vehicle code -> its last position (t, lat, lon), carried across batches
        self._pos: dict[int, tuple[float, float, float]] = {}
        self._no_cell = self._cells.id("")  # an empty cell id names no cell

    def add(self, batch: pa.RecordBatch) -> None:
        kind = self._kinds.codes(batch.column("kind"))
        recv = batch.column("recv_time").to_numpy(zero_copy_only=False)
        src = self._sources.codes(batch.column("source"))
        self._spans(src, recv)
        state_rows = np.flatnonzero(kind == self._kinds.id("state"))
        positions = self._positions(batch, state_rows, src, recv)
        link_rows = np.flatnonzero(kind == self._kinds.id("link"))
        if link_rows.size:
            self._link_rows(batch, link_rows, src[link_rows], recv[link_rows], positions)

    def _spans(self, src: np.ndarray, recv: np.ndarray) -> None:
        spans = self.data.spans
        order = np.argsort(src, kind="stable")
        codes, starts = np.unique(src[order], return_index=True)
        ends = np.r_[starts[1:], order.size]
        for c, a, b in zip(codes.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if c < 0:
                continue
            t = recv[order[a:b]]
            name = self._sources.names[c]
            lo, hi = float(t.min()), float(t.max())
            old = spans.get(name)
            spans[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    def _positions(self, batch: pa.RecordBatch, rows: np.ndarray, src: np.ndarray,
                   recv: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """vehicle code -> (times, lat, lon) of its positions: the one carried from the last
        batch, then this batch's."""
        out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if rows.size:
            lat, lon = _floats(batch, "lat", rows), _floats(batch, "lon", rows)
            ok = ~(np.isnan(lat) | np.isnan(lon))
            vs, t = src[rows][ok], recv[rows][ok]
            lat, lon = lat[ok], lon[ok]
            for v in np.unique(vs).tolist():
                mine = vs == v
                carried = self._pos.get(v)
                mt, ma, mo = t[mine], lat[mine], lon[mine]
                if carried is not None:
                    mt, ma, mo = (np.r_[carried[0], mt], np.r_[carried[1], ma],
                                  np.r_[carried[2], mo])
                out[v] = (mt, ma, mo)
                self._pos[v] = (float(mt[-1]), float(ma[-1]), float(mo[-1]))
        for v, (t0, a, o) in self._pos.items():
            if v not in out:
                out[v] = (np.array([t0]), np.array([a]), np.array([o]))
        return out

    def _link_rows(self, batch: pa.RecordBatch, rows: np.ndarray, src: np.ndarray,
                   t: np.ndarray,
                   positions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        lnk = self._links.codes(batch.column("link").take(pa.array(rows)))
        key = src * _LINK_SLOTS + lnk
        order = np.argsort(key, kind="stable")  # a stream's rows stay in arrival order
        rows, key, t = rows[order], key[order], t[order]
        seq = _floats(batch, "seq", rows)
        cell = self._cells.codes(batch.column("cell_id").take(pa.array(rows)))
        cell[cell == self._no_cell] = -1
        rat = batch.column("rat").take(pa.array(rows))
        figures = {name: _floats(batch, name, rows) for name in
                   ("rsrp_dbm", "sinr_db", "rtt_ms", "ul_kbps")}
        first = np.r_[True, key[1:] != key[:-1]]
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], key.size]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            k = int(key[a])
            self._stream(k, t[a:b], seq[a:b], cell[a:b], rat.slice(a, b - a),
                         {n: v[a:b] for n, v in figures.items()},
                         positions.get(k // _LINK_SLOTS))

    def _stream(self, key: int, t: np.ndarray, seq: np.ndarray, cell: np.ndarray,
                rat: pa.Array, figures: dict[str, np.ndarray],
                positions: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        d = self.data
        vehicle = self._sources.names[key // _LINK_SLOTS]
        link = self._links.names[key % _LINK_SLOTS]
        last = self._last.get(key)
        prev_seq = np.r_[last[3] if last is not None else math.nan, seq[:-1]]
        fresh = prev_seq != seq  # a redelivery right after its original counts once
        if not fresh.all():
            t, seq, cell = t[fresh], seq[fresh], cell[fresh]
            rat = rat.filter(pa.array(fresh))
            figures = {n: v[fresh] for n, v in figures.items()}
        n = t.size
        if not n:
            return
        d.link_samples += n
        for measure, (column, _, _) in MEASURES.items():
            got = int(np.count_nonzero(~np.isnan(figures[column])))
            d.measured[measure] = d.measured.get(measure, 0) + got
        step = t - np.r_[last[0] if last is not None else math.nan, t[:-1]]
        prev_cell = np.r_[last[1] if last is not None else -1, cell[:-1]]
        # a sample's cell served it until the stream's next sample, if that came soon
        held = np.where((step > 0) & (step <= SERVED_STEP_MAX_S), step, 0.0)
        self._cell_figures(cell, rat, link, figures, held, prev_cell)
        before = last[2] if last is not None else -1
        self._events(vehicle, link, t, cell, step, before)
        named = cell[cell >= 0]
        self._last[key] = (float(t[-1]), int(cell[-1]),
                           int(named[-1]) if named.size else before, float(seq[-1]))
        series = d.series.get((vehicle, link))
        if series is None:
            series = d.series[(vehicle, link)] = Series(t0=float(t[0]))
        series.add(t, np.vstack([figures[c] for c in _SERIES]))
        if positions is not None:
            self._route(t, figures, positions)

    def _cell_figures(self, cell: np.ndarray, rat: pa.Array, link: str,
                      figures: dict[str, np.ndarray], held: np.ndarray,
                      prev_cell: np.ndarray) -> None:
        cells = self.data.cells
        for c in np.unique(cell[cell >= 0]).tolist():
            mine = cell == c
            acc = cells.get(self._cells.names[c])
            if acc is None:
                acc = cells[self._cells.names[c]] = CellFigures()
            acc.links.add(link)
            acc.rats.update(r for r in rat.filter(pa.array(mine)).unique().to_pylist() if r)
            acc.samples += int(np.count_nonzero(mine))
            for q, column in ((acc.rsrp, "rsrp_dbm"), (acc.rtt, "rtt_ms")):
                values = figures[column][mine]
                q.add_many(values[~np.isnan(values)])
        for c in np.unique(prev_cell[prev_cell >= 0]).tolist():
            acc = cells.setdefault(self._cells.names[c], CellFigures())
            acc.seconds += float(held[prev_cell == c].sum())

    def _events(self, vehicle: str, link: str, t: np.ndarray, cell: np.ndarray,
                step: np.ndarray, before: int) -> None:
        d = self.data
        found: list[tuple[float, str, str, str, str, str, str]] = [
            (float(t[i] - step[i]), vehicle, link, "gap", "", "",
             f"no sample for {step[i]:.1f} s") for i in np.flatnonzero(step > GAP_S).tolist()]
        # a row without a cell is a gap in reporting, not a change: compare named rows only
        at = np.flatnonzero(cell >= 0)
        named = np.r_[before, cell[at]]
        moved = np.flatnonzero((named[1:] != named[:-1]) & (named[:-1] >= 0))
        names = self._cells.names
        found += [(float(t[at[i]]), vehicle, link, "cell change", names[int(named[i])],
                   names[int(named[i + 1])], "") for i in moved.tolist()]
        d.changes[(vehicle, link)] = d.changes.get((vehicle, link), 0) + int(moved.size)
        room = max(0, EVENTS_MAX - len(d.events))
        d.events += found[:room]
        d.events_dropped += max(0, len(found) - room)

    def _route(self, t: np.ndarray, figures: dict[str, np.ndarray],
               positions: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Each sample at its vehicle's last position (at most ``POSITION_MAX_AGE_S`` old),
        averaged into its square."""
        pt, plat, plon = positions
        at = np.searchsorted(pt, t, side="right") - 1
        ok = at >= 0
        ok[ok] &= (t[ok] - pt[at[ok]]) <= POSITION_MAX_AGE_S
        if not ok.any():
            return
        lat_bin = np.floor(plat[at[ok]] / ROUTE_BIN_DEG).astype(np.int64)
        lon_bin = np.floor(plon[at[ok]] / ROUTE_BIN_DEG).astype(np.int64)
        square = lat_bin * _LON_BINS + (lon_bin + _LON_BINS // 2)
        for measure, (column, _, _) in MEASURES.items():
            values = figures[column][ok]
            has = ~np.isnan(values)
            if not has.any():
                continue
            uniq, inverse = np.unique(square[has], return_inverse=True)
            sums = np.bincount(inverse, weights=values[has])
            counts = np.bincount(inverse)
            for sq, s, k in zip(uniq.tolist(), sums.tolist(), counts.tolist(), strict=True):
                a, b = divmod(sq, _LON_BINS)
                acc = self.data.route.setdefault((measure, a, b - _LON_BINS // 2), [0.0, 0])
                acc[0] += s
                acc[1] += k


def _floats(batch: pa.RecordBatch, name: str, rows: np.ndarray) -> np.ndarray:
    column = batch.column(name).take(pa.array(rows))
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


