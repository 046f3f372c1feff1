"""Loss, duplicates and reordering from a stream's ``seq`` numbers.

A gap is counted as loss the moment it appears, because an operator must see it then. If a
missing number turns up later it was only late: it moves from ``lost`` to ``reordered``. A number
seen before (a QoS 1 redelivery) is a duplicate and counts once. Only the missing numbers of the
last ``WINDOW`` are remembered, so the in-order case (almost every sample) costs one comparison
and the memory per stream stays bounded however long it runs.
"""

from __future__ import annotations

from typing import Final

import numpy as np

WINDOW: Final = 256
#: A jump back further than this is a sender restart (its seq began again), not a late sample:
#: we could not tell a sample that late from a duplicate anyway.
RESTART_BACK: Final = WINDOW
#: A seq 0 further than this behind is a sender that started again from 0. Closer, it may be a
#: QoS 1 redelivery of the stream's first message (brokers keep ~20 messages in flight), so it
#: stays a duplicate; a sender that restarts that early loses at most this many samples.
RESTART_FROM_ZERO: Final = 32

NEW: Final = 0
DUPLICATE: Final = 1
LATE: Final = 2

#: What a state handler returns besides True (new data) and False (duplicate): new data that
#: needs the hub's attention now rather than at the next tick (an event, a link losing service).
URGENT: Final = 2


class SeqTracker:
    """Per-stream sequence accounting. ``observe`` returns NEW, DUPLICATE or LATE.

    Callers on a hot path may handle ``seq == high + 1`` themselves (set ``high``, add one to
    ``received``): that is exactly what ``observe`` does for it.
    """

    __slots__ = ("high", "missing", "received", "lost", "duplicates", "reordered", "restarts")

    def __init__(self) -> None:
        self.high = -1  # highest seq seen; -1 before the first sample
        self.missing: set[int] = set()  # gaps within WINDOW of ``high`` not yet filled
        self.received = 0
        self.lost = 0
        self.duplicates = 0
        self.reordered = 0
        self.restarts = 0

    def observe(self, seq: int) -> int:
        high = self.high
        if seq > high:
            if high >= 0 and seq > high + 1:
                self.lost += seq - high - 1
                missing = self.missing
                missing.update(range(max(high + 1, seq - WINDOW), seq))
                if len(missing) > 2 * WINDOW:
                    floor = seq - WINDOW
                    self.missing = {m for m in missing if m >= floor}
            self.high = seq
            self.received += 1
            return NEW
        if seq in self.missing:
            self.missing.discard(seq)
            self.received += 1
            self.reordered += 1
            self.lost -= 1
            return LATE
        # A sender that restarts begins again from 0 (docs/protocol.md); a jump back beyond our
        # memory cannot be told from one either.
        if (seq == 0 and high >= RESTART_FROM_ZERO) or high - seq > RESTART_BACK:
            self.restarts += 1
            self.high = seq
            self.missing = set()
            self.received += 1
            return NEW
        # Seen before, or too old to tell a redelivery from a very late sample: either way it
        # is not new data, and any gap it belonged to was already counted as loss.
        self.duplicates += 1
        return DUPLICATE

    def rebase(self) -> None:
        """Forget where the stream was: its next number starts it afresh, opening no gap.
        For a stretch the hub could not see (l4mon/site_watch.py): what went missing then is not
        known to be lost. Not for QoS 1 streams, whose redeliveries the position dedupes."""
        self.high = -1
        self.missing = set()

    @property
    def expected(self) -> int:
        return self.received + self.lost

    @property
    def loss_ratio(self) -> float:
        expected = self.received + self.lost
        return self.lost / expected if expected else 0.0


def observe_many(tracker: SeqTracker, seqs: np.ndarray) -> np.ndarray:
    """``tracker.observe`` for each of ``seqs`` in order; True where the sample counted (new
    or late), False for a duplicate. The same rule, bit for bit: a report's columnar scan
    counts loss exactly as the hub does (tests hold the two equal on random streams).

    A run that only climbs is taken in bulk (its gaps one by one, as ``observe`` would); any
    other is walked sample by sample. Recordings and imports are almost all climbing runs.
    """
    n = len(seqs)
    counted = np.ones(n, dtype=bool)
    if not n:
        return counted
    s = seqs.astype(np.int64, copy=False)
    if int(s[0]) > tracker.high and (n == 1 or bool(np.all(s[1:] > s[:-1]))):
        prev = np.empty_like(s)
        prev[0] = tracker.high
        prev[1:] = s[:-1]
        gaps = s - prev - 1
        if tracker.high < 0:
            gaps[0] = 0  # the first sample of a stream opens no gap
        for i in np.flatnonzero(gaps > 0).tolist():
            tracker.high = int(prev[i])  # the state observe() would see at that sample
            tracker.observe(int(s[i]))
            tracker.received -= 1  # counted below with the rest of the run
        tracker.high = int(s[-1])
        tracker.received += n
        return counted
    observe = tracker.observe
    for i, seq in enumerate(s.tolist()):
        if observe(seq) == DUPLICATE:
            counted[i] = False
    return counted
