"""SeqTracker: loss, late arrivals, duplicates, restarts and bounded memory."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.sequence import (
    DUPLICATE,
    LATE,
    NEW,
    RESTART_BACK,
    RESTART_FROM_ZERO,
    WINDOW,
    SeqTracker,
    observe_many,
)


def _feed(seqs: list[int]) -> tuple[SeqTracker, list[int]]:
    tracker = SeqTracker()
    return tracker, [tracker.observe(s) for s in seqs]


def test_in_order_stream_has_no_loss() -> None:
    """An in-order stream starting anywhere counts every sample as new and nothing else."""
    tracker, kinds = _feed(list(range(40, 140)))
    assert kinds == [NEW] * 100
    assert (tracker.received, tracker.lost, tracker.duplicates, tracker.reordered) == (100, 0, 0, 0)
    assert tracker.high == 139
    assert tracker.missing == set()
    assert tracker.loss_ratio == 0.0
    assert tracker.expected == 100


def test_empty_tracker_reports_zero_loss_ratio() -> None:
    """Before any sample the ratio is 0, not a division by zero."""
    tracker = SeqTracker()
    assert tracker.loss_ratio == 0.0
    assert tracker.expected == 0
    assert tracker.high == -1


def test_gap_is_counted_as_loss_at_once() -> None:
    """A jump from 3 to 7 counts 4, 5, 6 as lost the moment 7 arrives."""
    tracker, kinds = _feed([0, 1, 2, 3, 7])
    assert kinds == [NEW] * 5
    assert tracker.lost == 3
    assert tracker.received == 5
    assert tracker.missing == {4, 5, 6}
    assert tracker.loss_ratio == pytest.approx(3 / 8)


def test_late_arrival_moves_from_lost_to_reordered() -> None:
    """A missing number that turns up later is reordered, not lost."""
    tracker, _ = _feed([0, 1, 4])
    assert (tracker.lost, tracker.reordered) == (2, 0)
    assert tracker.observe(2) == LATE
    assert (tracker.lost, tracker.reordered, tracker.received) == (1, 1, 4)
    assert tracker.observe(3) == LATE
    assert (tracker.lost, tracker.reordered, tracker.received) == (0, 2, 5)
    assert tracker.missing == set()
    assert tracker.high == 4
    assert tracker.loss_ratio == 0.0


def test_duplicate_redelivery_counted_once() -> None:
    """A QoS 1 redelivery of a seen number is DUPLICATE and does not count as received."""
    tracker, _ = _feed([0, 1, 2])
    assert tracker.observe(1) == DUPLICATE
    assert tracker.observe(2) == DUPLICATE
    assert (tracker.received, tracker.duplicates, tracker.lost) == (3, 2, 0)
    assert tracker.high == 2


def test_duplicate_of_a_late_sample() -> None:
    """A late sample redelivered again is a duplicate; the second copy does not touch lost."""
    tracker, _ = _feed([0, 3])
    assert tracker.observe(1) == LATE
    assert tracker.observe(1) == DUPLICATE
    assert (tracker.received, tracker.lost, tracker.reordered, tracker.duplicates) == (3, 1, 1, 1)
    assert tracker.missing == {2}


def test_sample_beyond_memory_is_a_restart_not_a_late_sample() -> None:
    """A jump back beyond WINDOW cannot be told from a restart: counting starts again there."""
    tracker, _ = _feed([*range(10), 1_000])
    assert tracker.lost == 990
    assert min(tracker.missing) == 1_000 - WINDOW
    # Within WINDOW of the jump the gap is still remembered and fills as reordered.
    assert tracker.observe(1_000 - WINDOW) == LATE
    assert (tracker.lost, tracker.reordered) == (989, 1)
    assert tracker.observe(20) == NEW
    assert (tracker.restarts, tracker.high, tracker.missing) == (1, 20, set())


def test_seq_zero_redelivered_early_is_a_duplicate() -> None:
    """A QoS 1 redelivery of seq 0 close to the stream's start stays a duplicate."""
    tracker, _ = _feed(list(range(RESTART_FROM_ZERO)))
    assert tracker.observe(0) == DUPLICATE
    assert tracker.restarts == 0


def test_seq_zero_after_a_run_is_a_restart() -> None:
    """A sender that starts again from 0 is seen as a restart at once, not as duplicates."""
    tracker, _ = _feed(list(range(RESTART_FROM_ZERO + 1)))
    assert tracker.observe(0) == NEW
    assert (tracker.restarts, tracker.high, tracker.duplicates) == (1, 0, 0)


def test_jump_back_beyond_restart_back_is_a_restart() -> None:
    """A jump back further than RESTART_BACK is a sender restart: new data, counting resumes."""
    first = RESTART_BACK + 100
    tracker, _ = _feed(list(range(first + 1)))
    assert tracker.observe(0) == NEW
    assert tracker.restarts == 1
    assert tracker.high == 0
    assert tracker.missing == set()
    for seq in range(1, 50):
        assert tracker.observe(seq) == NEW
    assert (tracker.received, tracker.lost, tracker.duplicates) == (first + 1 + 50, 0, 0)


def test_jump_back_at_restart_back_is_not_a_restart() -> None:
    """Exactly RESTART_BACK behind ``high`` (and not seq 0) is still a duplicate."""
    tracker, _ = _feed(list(range(RESTART_BACK + 2)))
    assert tracker.observe(1) == DUPLICATE
    assert tracker.restarts == 0
    assert tracker.high == RESTART_BACK + 1


def test_restart_after_short_run_is_detected() -> None:
    """A sender that restarts from 0 after 500 messages is a restart, not 100 duplicates."""
    tracker, _ = _feed(list(range(500)))
    kinds = [tracker.observe(s) for s in range(100)]
    assert tracker.restarts == 1
    assert kinds == [NEW] * 100
    assert tracker.duplicates == 0


def test_missing_set_stays_bounded_after_huge_gaps() -> None:
    """Many huge gaps never grow the missing set past 2*WINDOW, and loss stays exact."""
    tracker = SeqTracker()
    tracker.observe(0)
    for k in range(1, 201):
        tracker.observe(k * 10_000)
        assert len(tracker.missing) <= 2 * WINDOW
    assert tracker.lost == 200 * 9_999
    assert tracker.received == 201
    # The most recent gap is still tracked.
    assert tracker.observe(200 * 10_000 - 1) == LATE


def test_missing_set_bounded_with_many_small_gaps() -> None:
    """Every other number missing over a long stream keeps the set within 2*WINDOW."""
    tracker = SeqTracker()
    peak = 0
    for seq in range(0, 20_000, 2):
        tracker.observe(seq)
        peak = max(peak, len(tracker.missing))
    assert peak <= 2 * WINDOW
    assert tracker.lost == 9_999
    assert tracker.received == 10_000
    assert tracker.loss_ratio == pytest.approx(9_999 / 19_999)


@st.composite
def _shuffled_with_copies(draw: st.DrawFn) -> tuple[int, list[int], int]:
    """0..n-1 in any order after 0 (the stream's start is seen first), plus extra copies."""
    n = draw(st.integers(min_value=1, max_value=WINDOW - 1))
    rest = draw(st.permutations(list(range(1, n))))
    order = [0, *rest]
    # Copies of seq 0 are left out: once the stream is past RESTART_FROM_ZERO, a 0 means the
    # sender restarted (tested on its own below), not a redelivery.
    copies = draw(st.lists(st.integers(min_value=min(1, n - 1), max_value=n - 1), max_size=40))
    if n == 1:
        copies = [0 for _ in copies]
    for seq in copies:
        # Anywhere after the first sample; the earliest copy is "the" sample, later ones are
        # redeliveries, so where a copy lands does not change the expected counts.
        pos = draw(st.integers(min_value=1, max_value=len(order)))
        order.insert(pos, seq)
    return n, order, len(copies)


@settings(max_examples=300, deadline=None)
@given(_shuffled_with_copies())
def test_property_permutation_with_duplicates(case: tuple[int, list[int], int]) -> None:
    """Any reordering with redeliveries ends with every number received once and no loss."""
    n, order, extra = case
    tracker, kinds = _feed(order)
    assert tracker.received == n
    assert tracker.lost == 0
    assert tracker.duplicates == extra
    assert tracker.missing == set()
    assert tracker.high == n - 1
    # Reference model: a first sighting below the running maximum is a reordered sample.
    seen: set[int] = set()
    high = -1
    reordered = 0
    expected_kinds = []
    for seq in order:
        if seq in seen:
            expected_kinds.append(DUPLICATE)
            continue
        seen.add(seq)
        if seq < high:
            reordered += 1
            expected_kinds.append(LATE)
        else:
            expected_kinds.append(NEW)
        high = max(high, seq)
    assert tracker.reordered == reordered
    assert kinds == expected_kinds


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=300))
def test_property_in_order_subset_loss(subset: set[int]) -> None:
    """Any subset delivered in order loses exactly the numbers skipped since the first seen."""
    seqs = sorted(subset)
    tracker, kinds = _feed(seqs)
    assert kinds == [NEW] * len(seqs)
    assert tracker.lost == (seqs[-1] - seqs[0] + 1) - len(seqs)
    assert tracker.received == len(seqs)
    assert tracker.duplicates == 0
    assert tracker.reordered == 0
    assert len(tracker.missing) <= 2 * WINDOW


def _awkward_stream(rng: random.Random) -> list[int]:
    """Climbs mostly, with gaps, repeats, late numbers, restarts from 0 and big jumps."""
    seqs, x = [], rng.randint(0, 50)
    for _ in range(rng.randint(1, 400)):
        r = rng.random()
        if r < 0.7:
            x += 1
        elif r < 0.8:
            x += rng.randint(2, 40)
        elif r < 0.87:
            x -= rng.randint(1, 10)
        elif r < 0.9:
            x = 0
        elif r < 0.93:
            x -= rng.randint(200, 600)
        elif r < 0.96:
            pass
        else:
            x += rng.randint(300, 900)
        x = max(0, x)
        seqs.append(x)
    return seqs


@pytest.mark.parametrize("seed", range(5))
def test_observe_many_is_observe_bit_for_bit(seed: int) -> None:
    """The bulk path a report's scan takes gives the hub's counts exactly: same received,
    lost, duplicates, reordered, restarts, missing set, and the same duplicates flagged,
    whatever the batch boundaries."""
    rng = random.Random(seed)
    for _ in range(300):
        seqs = _awkward_stream(rng)
        one, bulk = SeqTracker(), SeqTracker()
        counted_one = [one.observe(v) != DUPLICATE for v in seqs]
        counted_bulk: list[bool] = []
        i = 0
        while i < len(seqs):
            k = rng.randint(1, 50)
            counted_bulk += observe_many(bulk, np.array(seqs[i:i + k])).tolist()
            i += k
        assert counted_bulk == counted_one
        for name in SeqTracker.__slots__:
            assert getattr(bulk, name) == getattr(one, name), name
