"""Handover detection: serving-cell changes on one link, their interruption and their class.

One code path for live and replay: every method takes the hub time it is given and never reads a
clock. Definitions and their reasoning are in docs/handover.md; in short:

* ``observe`` is called for every new sample of the link, in arrival order. When the serving
  cell stays the same it only compares and appends one tuple to a bounded ring.
* A *trigger* (the serving cell or RAT changes, service is lost or comes back, the link was
  silent, or probes went unanswered, for more than ``rlf_threshold_s``) opens an *episode*. At
  the next ``advance`` the episode is anchored on the last *useful* sample before the trigger (an
  answered probe within ``rtt_k`` x the cell's baseline RTT, or a sample in service that carried
  no probe) and closed at the first useful sample after it; everything between is the
  interruption. An episode is one ``failure``, or one record per serving-cell change in it.
  A sample without a probe (``LinkSample.probe`` false) is no evidence of an outage: only
  unanswered probes, no-service reports and gaps in the samples themselves are.
* A record is returned by ``advance`` once everything in it is final: its interruption is
  closed, and what the link did next (the dwell on the new cell, a return to the old one) is known
  or ``dwell_horizon_s`` has passed.

Results depend on the samples and their hub times only, never on when ``advance`` is called.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median
from typing import Final, Literal

import msgspec

from telemetry.link import Pose
from telemetry.pace import OUTAGE_INTERVALS, SPACING_N
from telemetry.sequence import RESTART_BACK, RESTART_FROM_ZERO
from telemetry.wire import LinkSample

Kind = Literal["success", "failure", "ping_pong", "too_frequent"]
Basis = Literal["rtt", "gap"]

#: Samples a link keeps after an ``advance`` for measuring interruptions (6.4 s at 10 Hz). An
#: episode is anchored at the first ``advance`` after its trigger, so the ring only has to reach
#: back over the stretch just before a change (a few samples, or ``baseline_n`` answered probes,
#: or SPACING_N intervals). Between two ``advance`` calls it keeps every sample, and ``advance``
#: trims it back to RING once it holds TRIM_AT. Entries are plain numbers: a ring of 512 entries
#: that held each sample and vehicle state kept 200 MB alive for 600 links and cost more in
#: cache misses than in instructions (docs/benchmarks.md); this one holds 16 MB.
RING: Final = 64
TRIM_AT: Final = 2 * RING
_NEVER: Final = object()  # matches no cell and no RAT: the first sample takes the slow path
_UNDECIDED: Final = object()  # a judgement that needs samples not received yet


class Handover(msgspec.Struct, frozen=True, kw_only=True):
    """One serving-cell change, or one radio link failure, on one link. Times are hub times."""

    #: First sample on the new cell; for a failure, the first no-service report, or else the last
    #: useful sample before the link stopped delivering.
    at: float
    kind: Kind
    from_cell: str
    to_cell: str
    from_rat: str
    to_rat: str
    inter_rat: bool
    #: Radio of the last report on ``from_cell`` before the change (failure: before the loss) and
    #: of the first report on ``to_cell`` (failure: the first useful sample after the outage).
    rsrp_before: float | None
    rsrp_after: float | None
    sinr_before: float | None
    sinr_after: float | None
    #: Time the link delivered nothing useful around the change, ms (see docs/handover.md).
    interruption_ms: float
    #: ``rtt``: measured between two answered probes; ``gap``: at least one end is a sample
    #: without a probe (the link has no RTT probe, or not on every sample), so the gap between
    #: samples in service.
    interruption_basis: Basis
    #: Time on ``to_cell`` (failure: from the recovery) until the serving cell changed again;
    #: None when it stayed longer than the tracker's ``dwell_horizon_s``.
    dwell_s: float | None
    #: Time until the link was back on ``from_cell``, when the next cell it served on was
    #: ``from_cell`` within ``dwell_horizon_s``; None otherwise (and for failures).
    returned_after_s: float | None
    #: Last known position at ``at`` (None when the hub passed none).
    lat: float | None
    lon: float | None
    #: Failure only: (rat, cell) of each cell the link was handed to during the outage without
    #: delivering on it, in order.
    via: tuple[tuple[str, str], ...] = ()
    #: Failure only: the position when the link delivered again. An outage that begins at a
    #: junction's edge and lasts through it belongs to the junction too.
    end_lat: float | None = None
    end_lon: float | None = None


class _At:
    """A position given as numbers (``observe``'s keywords)."""

    __slots__ = ("lat", "lon")

    def __init__(self, lat: float, lon: float) -> None:
        self.lat = lat
        self.lon = lon


def _lat_lon(pose: Pose | None) -> tuple[float | None, float | None]:
    return (None, None) if pose is None else (pose.lat, pose.lon)


#: A sample's radio as records report it: (RSRP dBm, SINR dB).
_Radio = tuple[float | None, float | None]


def _radio(sample: LinkSample) -> _Radio:
    return (sample.rsrp_dbm, sample.sinr_db)


class _Stay:
    """A run of consecutive samples on one serving cell (``key`` None: no service)."""

    __slots__ = ("carry", "early", "end", "first", "key", "last", "lat", "lon", "next", "start")

    def __init__(self, key: tuple[str, str] | None, first: _Radio, start: float,
                 pose: Pose | None, carry: float | None) -> None:
        self.key = key
        self.first = first  # the radio of its first sample...
        self.last = first  # ...and of its last, set when the stay ends
        self.start = start
        self.end: float | None = None  # the first sample of the next stay
        self.next: _Stay | None = None
        self.lat, self.lon = _lat_lon(pose)
        #: The baseline RTT the link had when this stay began (the previous cell's).
        self.carry = carry
        #: RTTs of the first ``baseline_n`` answered probes within ``dwell_horizon_s``.
        self.early: list[float] = []


#: One observed sample: (hub time, RTT, RSRP, SINR, latitude, longitude, stay, whether it
#: carried a probe). Plain numbers, not the sample and the vehicle's state: those are large,
#: and the ring would keep them alive.
_Entry = tuple[float, float | None, float | None, float | None, float | None, float | None,
               _Stay, bool]


class _Pending:
    """A record whose interruption is known, waiting for what the link does next."""

    __slots__ = ("at", "dwell_from", "fields", "from_key", "kind", "to_stay")

    def __init__(self, *, at: float, kind: Kind, from_key: tuple[str, str], to_stay: _Stay,
                 dwell_from: float, fields: dict[str, object]) -> None:
        self.at = at
        self.kind = kind  # "failure", "too_frequent" or "success"; ping-pong is decided later
        self.from_key = from_key
        self.to_stay = to_stay
        self.dwell_from = dwell_from
        self.fields = fields


def _key(sample: LinkSample) -> tuple[str, str] | None:
    cell = sample.cell_id
    if cell is None or sample.rat == "none":
        return None
    return (sample.rat, cell)


def _s(seconds: float) -> float:
    return round(seconds, 6)


class HandoverTracker:
    """Handovers of one vehicle link. Never called concurrently (the hub's ingest task owns it).

    ``observe`` every sample (or ``take`` every new one), and ``advance`` at the hub's ticks
    to collect the records that became final.
    """

    __slots__ = ("_answered_at", "_base", "_closed", "_early", "_early_until", "_first_answer",
                 "_held", "_high", "_k", "_last_at", "_marks", "_max", "_pose",
                 "_n", "_open", "_rat", "_cell", "_recent", "_ring", "_rlf_s", "_stay",
                 "_unanswered", "_silence_marked",
                 "baseline_n", "dwell_horizon_s", "frequency_window_s", "max_per_window",
                 "ping_pong_window_s", "rlf_threshold_s", "rtt_k")

    def __init__(self, *, rtt_k: float = 3.0, baseline_n: int = 20, rlf_threshold_s: float = 1.0,
                 ping_pong_window_s: float = 1.0, dwell_horizon_s: float = 5.0,
                 max_per_window: int = 3, frequency_window_s: float = 10.0) -> None:
        if rtt_k < 1.0:
            raise ValueError("rtt_k must be >= 1 (a probe at the baseline is useful)")
        if baseline_n < 1:
            raise ValueError("baseline_n must be >= 1")
        if rlf_threshold_s <= 0 or ping_pong_window_s <= 0 or frequency_window_s <= 0:
            raise ValueError("rlf_threshold_s, ping_pong_window_s and frequency_window_s "
                             "must be > 0")
        if dwell_horizon_s < ping_pong_window_s:
            raise ValueError("dwell_horizon_s must be >= ping_pong_window_s: a ping-pong is "
                             "only known once the link has stayed away that long")
        if max_per_window < 1:
            raise ValueError("max_per_window must be >= 1")
        self.rtt_k = rtt_k
        self.baseline_n = baseline_n
        self.rlf_threshold_s = rlf_threshold_s
        self.ping_pong_window_s = ping_pong_window_s
        self.dwell_horizon_s = dwell_horizon_s
        self.max_per_window = max_per_window
        self.frequency_window_s = frequency_window_s
        self._k = rtt_k
        self._rlf_s = rlf_threshold_s
        self._max = baseline_n
        self._high = -1  # highest seq observed
        self._cell: object = _NEVER
        self._rat: object = _NEVER
        self._pose: Pose | None = None  # observe's last given position
        self._last_at = -float("inf")
        self._answered_at = -float("inf")
        self._first_answer: int | None = None  # position of the link's first answered probe
        #: A probe went unanswered since the last answer (samples without one do not count),
        #: and that silence has already opened an episode.
        self._unanswered = False
        self._silence_marked = False
        self._early: list[float] | None = None  # the current stay's early RTTs, while collecting
        self._early_until = 0.0
        self._stay: _Stay | None = None
        self._base: float | None = None  # baseline RTT of the last cell that had answers
        self._ring: list[_Entry] = []
        self._n = 0  # samples observed; the next sample's position
        self._marks: deque[int] = deque()  # positions of triggers not yet in an episode
        self._open: tuple[_Entry | None, int] | None = None  # (anchor, scan position)
        self._closed = -1  # position of the last closed episode's end
        self._held: deque[_Pending] = deque()
        self._recent: deque[float] = deque()  # times of recent cell changes (too-frequent)

    # -- hot path ---------------------------------------------------------------------------

    def observe(self, now: float, sample: LinkSample, *, lat: float | None = None,
                lon: float | None = None) -> None:
        """Take the link's next sample, received at hub time ``now``, in any order and with
        duplicates (those are ignored by ``seq``); ``lat``/``lon`` is where the vehicle was,
        kept until given again."""
        seq = sample.seq
        high = self._high
        if seq <= high and not ((seq == 0 and high >= RESTART_FROM_ZERO)
                                or high - seq > RESTART_BACK):
            return  # a duplicate (or a sample we already passed): never a change of cell
        self._high = seq
        if lat is not None and lon is not None:
            self._pose = _At(lat, lon)
        self.take(now, sample, self._pose)

    def take(self, now: float, sample: LinkSample, pose: Pose | None) -> None:
        """``observe`` for a caller that already drops duplicates and late samples (the hub's
        link does, by ``seq``): the hot path while the serving cell stays the same. ``pose``
        is where the vehicle was (the hub passes the vehicle's last state message)."""
        if (sample.cell_id != self._cell or sample.rat != self._rat
                or now - self._last_at > self._rlf_s):
            self._slow(now, sample, pose)
        rtt = sample.rtt_ms
        probe = sample.probe
        if rtt is not None:
            if self._first_answer is None:
                self._first_answer = self._n  # the link has RTT probes: interruptions use them
            elif self._unanswered and now - self._answered_at > self._rlf_s:
                self._marks.append(self._n)  # probes went unanswered for over rlf_threshold_s
            self._unanswered = self._silence_marked = False
            self._answered_at = now
            early = self._early
            if early is not None:
                if now > self._early_until:
                    self._early = None
                else:
                    early.append(rtt)
                    if len(early) >= self._max:
                        self._early = None
        elif probe:
            self._unanswered = True
        if pose is None:
            self._ring.append((now, rtt, sample.rsrp_dbm, sample.sinr_db, None, None,
                               self._stay, probe))  # type: ignore[arg-type]
        else:
            self._ring.append((now, rtt, sample.rsrp_dbm, sample.sinr_db, pose.lat, pose.lon,
                               self._stay, probe))  # type: ignore[arg-type]
        self._n += 1
        self._last_at = now

    # -- slow path: only when something changes ---------------------------------------------

    def _slow(self, now: float, sample: LinkSample, pose: Pose | None) -> None:
        stay = self._stay
        if stay is not None and now - self._last_at > self._rlf_s:
            self._marks.append(self._n)  # the link was silent
        self._cell = sample.cell_id
        self._rat = sample.rat
        key = _key(sample)
        if stay is not None and key == stay.key:
            return  # same cell after a silence, or another spelling of "no service"
        if stay is not None:
            stay.end = now
            last = self._ring[-1]  # the previous sample: this one is not in yet
            stay.last = (last[2], last[3])
            if stay.key is not None:
                self._base = self._stay_base(stay)
            self._marks.append(self._n)
        new = _Stay(key, _radio(sample), now, pose, self._base)
        if stay is not None:
            stay.next = new
        self._stay = new
        if key is None:
            self._early = None
        else:
            self._early = new.early
            self._early_until = now + self.dwell_horizon_s

    def _stay_base(self, stay: _Stay) -> float | None:
        """The baseline a just-ended stay hands to the next cell (its last answers' median)."""
        ring = self._ring
        answers: list[float] = []
        for i in range(len(ring) - 1, -1, -1):
            entry = ring[i]
            if entry[6] is not stay:
                break
            rtt = entry[1]
            if rtt is not None:
                answers.append(rtt)
                if len(answers) >= self._max:
                    return median(answers)
        if stay.early:
            own = median(stay.early)
            return own if stay.carry is None else max(stay.carry, own)
        return self._base if not answers else median(answers)

    # -- judging samples (cold: only around episodes) ----------------------------------------

    def _early_final(self, stay: _Stay, now: float) -> bool:
        return (len(stay.early) >= self._max or stay.end is not None
                or now > stay.start + self.dwell_horizon_s)

    def _useful(self, entries: list[_Entry], i: int, pos: int, now: float) -> object:
        """True / False, or _UNDECIDED when the cell's early probes are not all in yet."""
        entry = entries[i]
        rtt, stay = entry[1], entry[6]
        if stay.key is None:
            return False
        if rtt is None:
            if not entry[7]:
                return True  # no probe in this sample: being in service is all it says
            first = self._first_answer
            # Before the link's first answer, a sender that never answers is taken to have no
            # working probe (v1 senders could not say so): any sample in service is useful.
            return first is None or pos < first
        previous: list[float] = []
        j = i - 1
        while j >= 0 and len(previous) < self._max:
            entry = entries[j]
            if entry[6] is not stay:
                break
            r = entry[1]
            if r is not None:
                previous.append(r)
            j -= 1
        if len(previous) >= self._max or (j < 0 and previous and stay.start < entries[0][0]):
            ref: float | None = median(previous)  # rolling: the previous N answered probes
        else:
            if not self._early_final(stay, now):
                return _UNDECIDED
            # Early on a cell: the larger of the previous cell's baseline and this cell's own
            # median over its first N answered probes (a slower RAT is not an interruption;
            # the queue drained just after a change cannot set the baseline).
            own = median(stay.early) if stay.early else None
            carry = stay.carry
            ref = own if carry is None else carry if own is None else max(carry, own)
        return ref is None or rtt <= self._k * ref

    # -- advance -----------------------------------------------------------------------------

    def advance(self, now: float) -> list[Handover]:
        """Records that became final by hub time ``now``, oldest first.

        Every sample received up to ``now`` must have been observed first.
        """
        if self._marks or self._open is not None:
            self._episodes(now)
        if (self._open is None and self._unanswered and not self._silence_marked
                and self._first_answer is not None and now - self._answered_at > self._rlf_s):
            # Probes unanswered for a while: anchor the outage now, before a long one pushes
            # its start out of the ring. Nothing is decided until the link delivers again.
            self._silence_marked = True
            self._marks.append(self._n)
            self._episodes(now)
        ring = self._ring
        if len(ring) >= TRIM_AT:
            del ring[:len(ring) - RING]
        if not self._held:
            return []
        return self._finalise(now)

    def forget_service(self) -> None:
        """The hub stopped seeing the link (its feed was lost, l4mon/site_watch.py): whatever the
        link does until it is seen again is unknown, so its next sample starts afresh, like
        its first (no silence, no change of cell, no outage measured across the gap). Records
        already made are still finalised."""
        self._ring.clear()
        self._marks.clear()
        self._open = None
        self._stay = None
        self._cell = self._rat = _NEVER
        self._early = None
        self._unanswered = self._silence_marked = False
        self._closed = self._n - 1
        self._last_at = -float("inf")

    def drain(self, now: float) -> list[Handover]:
        """At the end of the input (a replay's last message): everything final by ``now``,
        then every handover still held, with what is not known yet (dwell, a return to the
        old cell) left as None. Live hubs never drain: their input does not end."""
        return self.advance(now) + self._finalise(math.inf)

    def _episodes(self, now: float) -> None:
        entries = self._ring  # nothing is observed while this runs
        base = self._n - len(entries)
        marks = self._marks
        while True:
            if self._open is None:
                while marks and marks[0] <= self._closed:
                    marks.popleft()
                if not marks:
                    return
                anchor = self._anchor(entries, base, marks[0], now)
                if anchor is _UNDECIDED:
                    return
                self._open = (anchor, marks.popleft())  # type: ignore[assignment]
            anchor, scan = self._open  # type: ignore[misc]
            scan = max(scan, base)  # (only if advance was not called for a whole ring)
            found = -1
            while scan < self._n:
                useful = self._useful(entries, scan - base, scan, now)
                if useful is _UNDECIDED:
                    break
                if useful:
                    found = scan
                    break
                scan += 1
            if found < 0:
                self._open = (anchor, scan)
                return
            if anchor is not None:
                limit = self._outage_limit(entries, anchor, found - base)
                if limit is _UNDECIDED:
                    self._open = (anchor, found)  # too few samples yet to know the link's pace
                    return
                self._close(anchor, entries[found - base], limit)  # type: ignore[arg-type]
            self._open = None
            self._closed = found

    def _anchor(self, entries: list[_Entry], base: int, mark: int, now: float) -> object:
        """The last useful entry before position ``mark``; None if the link never had one."""
        stop = max(base, self._closed)
        for pos in range(mark - 1, stop - 1, -1):
            if pos == self._closed:
                return entries[pos - base]  # the end of the previous episode is useful
            useful = self._useful(entries, pos - base, pos, now)
            if useful is _UNDECIDED:
                return _UNDECIDED
            if useful:
                return entries[pos - base]
        if base > 0 and entries and entries[0][6].key is not None:
            # Not found within the ring (only after a very long stretch of slow answers): the
            # oldest sample kept is the best bound we have.
            return entries[0]
        return None  # nothing in service before: the link's first service is not a handover

    def _outage_limit(self, entries: list[_Entry], anchor: _Entry, end: int) -> object:
        """Seconds without a useful sample beyond which an episode is a failure: the larger of
        ``rlf_threshold_s`` and OUTAGE_INTERVALS of the link's usual sample interval, so that a
        link reporting about once a second is not failed for every row its logger skipped.

        The usual interval is the median of the SPACING_N intervals up to the anchor; for an
        anchor among a link's first samples, of its first SPACING_N intervals (a logger's
        start-up burst says nothing about its pace), _UNDECIDED until those have arrived.
        """
        i = end
        while i >= 0 and entries[i] is not anchor:
            i -= 1
        lo = max(0, i - SPACING_N)
        if lo + SPACING_N >= len(entries):
            return _UNDECIDED
        gaps = [entries[j + 1][0] - entries[j][0] for j in range(lo, lo + SPACING_N)]
        return max(self._rlf_s, OUTAGE_INTERVALS * median(gaps))

    def _close(self, start: _Entry, end: _Entry, limit: float) -> None:
        """Turn an episode (last useful sample before, first useful after) into records; one
        without a useful sample for more than ``limit`` seconds is a failure."""
        t0, stay0 = start[0], start[6]
        t1, stay1 = end[0], end[6]
        s0, s1 = (start[2], start[3]), (end[2], end[3])
        stays = [stay0]
        while stays[-1] is not stay1:
            stays.append(stays[-1].next)  # type: ignore[arg-type]
        served = [s for s in stays if s.key is not None]
        lost = next((i for i, s in enumerate(stays) if s.key is None), None)
        basis: Basis = "rtt" if start[1] is not None and end[1] is not None else "gap"
        outage = t1 - t0
        if lost is not None or outage > limit:
            fk, tk = served[0].key, served[-1].key
            assert fk is not None and tk is not None
            if lost is not None:
                at, lat, lon = stays[lost].start, stays[lost].lat, stays[lost].lon
                before = stays[lost - 1].last
            else:
                lat, lon, at, before = start[4], start[5], t0, s0
            self._hold(at=at, kind="failure", fk=fk, tk=tk, before=before, after=s1,
                       interruption=outage, basis=basis, lat=lat, lon=lon, to_stay=stay1,
                       dwell_from=t1, via=tuple(s.key for s in served[1:-1]),  # type: ignore[misc]
                       end=(end[4], end[5]))
            return
        for j in range(len(served) - 1):
            old, new = served[j], served[j + 1]
            begin = t0 if j == 0 else new.start
            finish = t1 if j == len(served) - 2 else served[j + 2].start
            self._hold(at=new.start, kind="success", fk=old.key, tk=new.key,  # type: ignore[arg-type]
                       before=old.last, after=new.first, interruption=finish - begin,
                       basis=basis, lat=new.lat, lon=new.lon, to_stay=new, dwell_from=new.start,
                       via=())

    def _hold(self, *, at: float, kind: Kind, fk: tuple[str, str], tk: tuple[str, str],
              before: _Radio, after: _Radio, interruption: float, basis: Basis,
              lat: float | None, lon: float | None, to_stay: _Stay, dwell_from: float,
              via: tuple[tuple[str, str], ...],
              end: tuple[float | None, float | None] = (None, None)) -> None:
        if fk != tk:  # a change of cell: counts towards "too frequent"
            recent = self._recent
            recent.append(at)
            while recent[0] <= at - self.frequency_window_s:
                recent.popleft()
            if kind != "failure" and len(recent) > self.max_per_window:
                kind = "too_frequent"
        fields: dict[str, object] = {
            "at": at, "from_cell": fk[1], "to_cell": tk[1], "from_rat": fk[0], "to_rat": tk[0],
            "inter_rat": fk[0] != tk[0], "rsrp_before": before[0],
            "rsrp_after": after[0], "sinr_before": before[1],
            "sinr_after": after[1], "interruption_ms": round(interruption * 1000.0, 3),
            "interruption_basis": basis, "lat": lat, "lon": lon, "via": via,
        }
        if kind == "failure":
            fields["end_lat"], fields["end_lon"] = end
        self._held.append(_Pending(at=at, kind=kind, from_key=fk, to_stay=to_stay,
                                   dwell_from=dwell_from, fields=fields))

    def _finalise(self, now: float) -> list[Handover]:
        horizon = self.dwell_horizon_s
        out: list[Handover] = []
        held = self._held
        while held:
            p = held[0]
            stay = p.to_stay
            if stay.end is not None:
                dwell = stay.end - p.dwell_from
                dwell_s = _s(dwell) if dwell <= horizon else None
            elif now > p.dwell_from + horizon:
                dwell_s = None
            else:
                break  # still on the new cell, within the horizon
            returned_s = None
            if p.kind != "failure":
                nxt = stay.next
                while nxt is not None and nxt.key is None:
                    nxt = nxt.next
                if nxt is not None:
                    back = nxt.start - p.at
                    if nxt.key == p.from_key and back <= horizon:
                        returned_s = _s(back)
                elif now <= p.at + horizon:
                    break  # out of service since; it may yet come back on the old cell
            kind = p.kind
            if returned_s is not None and kind != "failure" \
                    and returned_s <= self.ping_pong_window_s:
                kind = "ping_pong"
            out.append(Handover(kind=kind, dwell_s=dwell_s, returned_after_s=returned_s,
                                **p.fields))  # type: ignore[arg-type]
            held.popleft()
        return out


class Failover(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle link became unusable; how long until the vehicle had a usable link again."""

    at: float  # hub time ``link`` became unusable
    link: str
    #: The link usable first afterwards: another link, or ``link`` itself if it came back first.
    to_link: str
    #: ``at`` until another link was usable (0.0 when one already was); None when ``link`` came
    #: back before any other.
    failover_s: float | None
    #: Time within the event with no usable link at all (both links down, on a two-link vehicle).
    both_unusable_s: float


class FailoverTracker:
    """Failover between one vehicle's links, fed with each link's usable-ness from the hub."""

    __slots__ = ("_open", "_usable")

    def __init__(self) -> None:
        self._usable: dict[str, bool] = {}
        self._open: list[tuple[float, str]] = []  # (at, link) while no link is usable

    def observe_state(self, now: float, link: str, usable: bool) -> list[Failover]:
        """A link's state at ``now`` (repeats are fine); returns the events it ends."""
        was = self._usable.get(link)
        self._usable[link] = usable
        if was is None and not usable:
            return []  # first heard unusable: it never carried the vehicle, nothing failed over
        if usable == bool(was):
            return []
        if not usable:
            others = sorted(name for name, ok in self._usable.items() if ok)
            if others:
                return [Failover(at=now, link=link, to_link=others[0], failover_s=0.0,
                                 both_unusable_s=0.0)]
            self._open.append((now, link))
            return []
        ended = [Failover(at=at, link=down, to_link=link,
                          failover_s=None if link == down else _s(now - at),
                          both_unusable_s=_s(now - at)) for at, down in self._open]
        self._open.clear()
        return ended


__all__ = ["Basis", "Failover", "FailoverTracker", "Handover", "HandoverTracker", "Kind", "Pose"]
