"""Physical ranges of link figures (telemetry/ranges.py): the screen, and what it tells."""

from __future__ import annotations

import math

import pytest

from telemetry.ranges import (
    ABOVE_RANGE,
    BELOW_RANGE,
    LINK_RANGES,
    REASONS,
    Screened,
    describe,
    screen_link,
    tally,
)

SAMPLE = {"ts": 1_700_000_000.0, "seq": 3, "rat": "lte", "cell_id": "B", "rsrp_dbm": -97.0,
          "rsrq_db": -11.0, "sinr_db": 9.5, "rtt_ms": 41.0, "ul_kbps": 3_900.0,
          "dl_kbps": 12_000.0, "probe": True, "sender_clock": False}


def test_a_sample_within_its_ranges_passes_untouched() -> None:
    fields, screened = screen_link(SAMPLE)
    assert screened == () and fields == SAMPLE
    assert fields is not SAMPLE  # the caller's dict is never changed


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("rsrp_dbm", -200, BELOW_RANGE), ("rsrp_dbm", -205.0, BELOW_RANGE),
    ("rsrp_dbm", -225.0, BELOW_RANGE), ("rsrp_dbm", 2_147_483_647, ABOVE_RANGE),
    ("rsrq_db", -225.0, BELOW_RANGE), ("sinr_db", 41.0, ABOVE_RANGE),
    ("ul_kbps", -1.0, BELOW_RANGE), ("dl_kbps", 1e9, ABOVE_RANGE),
])
def test_one_marker_nulls_its_field_only(field: str, value: float, reason: str) -> None:
    fields, screened = screen_link({**SAMPLE, field: value})
    assert screened == (Screened(field, reason),)
    assert fields == {**SAMPLE, field: None}


@pytest.mark.parametrize(("rtt", "reason"), [(0, BELOW_RANGE), (-1.0, BELOW_RANGE),
                                             (60_000.01, ABOVE_RANGE)])
def test_an_rtt_marker_is_no_probe(rtt: float, reason: str) -> None:
    fields, screened = screen_link({**SAMPLE, "rtt_ms": rtt})
    assert screened == (Screened("rtt_ms", reason),)
    assert fields == {**SAMPLE, "rtt_ms": None, "probe": False}


def test_the_ends_of_each_range() -> None:
    """Both ends are inside, but RTT's 0 (a round trip takes time)."""
    for field, bounds in LINK_RANGES.items():
        for value in (bounds.low, bounds.high):
            _, screened = screen_link({**SAMPLE, field: value})
            expected = (Screened(field, BELOW_RANGE),) if field == "rtt_ms" \
                and value == bounds.low else ()
            assert screened == expected, (field, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "x", True, None])
def test_what_is_no_finite_number_is_left_for_the_wire_to_refuse(value: object) -> None:
    fields, screened = screen_link({**SAMPLE, "rsrp_dbm": value})
    assert screened == ()
    assert fields["rsrp_dbm"] is value


def test_tally_and_describe() -> None:
    counts: dict[str, dict[str, int]] = {}
    tally((Screened("rsrp_dbm", BELOW_RANGE), Screened("rtt_ms", BELOW_RANGE)), counts)
    tally((Screened("rsrp_dbm", BELOW_RANGE),), counts)
    tally((Screened("rtt_ms", ABOVE_RANGE),), counts)
    assert counts == {"rsrp_dbm": {BELOW_RANGE: 2}, "rtt_ms": {BELOW_RANGE: 1, ABOVE_RANGE: 1}}
    assert describe(counts) == [
        "RSRP: 2 values below the 3GPP reporting range of TS 38.133 (-156 … -31 dBm), "
        "not measured",
        "RTT: 1 value above the plausible range (> 0 … 60,000 ms), not measured",
        "RTT: 1 value below the plausible range (> 0 … 60,000 ms), not measured",
    ]
    assert describe({"future_field": {"above_range": 4}}) == [
        "future_field: 4 values above range, not measured"]
    assert set(REASONS) == {BELOW_RANGE, ABOVE_RANGE}
