"""Physical ranges of link figures (telemetry/ranges.py): the screen, and what it tells."""

from __future__ import annotations

import json
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from l4mon.hub import Hub
from l4mon.metrics import HubCollector, exposition, make_registry
from l4mon.store.journal import open_journal
from telemetry.linkstate import DOWN, OK
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
from telemetry.topics import link_topic

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


# --- the hub: counted per field and reason, in total and per link; never a failure -----------

NOW = 1_700_000_000.0


def _link_payload(seq: int, t: float, **changes: object) -> bytes:
    return json.dumps({**SAMPLE, "ts": t, "seq": seq, "sender_clock": True, **changes}).encode()


def test_hub_counts_screened_figures_per_field_reason_and_link() -> None:
    """Every screened figure of a fresh sample is counted once, in total and on its link; a
    redelivered duplicate is not counted again; nothing is quarantined."""
    hub = Hub(store=open_journal(":memory:"))
    markers: dict[str, list[dict[str, object]]] = {
        "l5g": [{"rsrp_dbm": -200}, {}, {"rsrp_dbm": -225, "rtt_ms": 0}, {"rtt_ms": -1}],
        "lte": [{}, {"sinr_db": 2147483647}, {"rtt_ms": 70_000, "ul_kbps": -3.0}],
    }
    batch = [(link_topic("s1", "v1", link), _link_payload(seq, NOW, **changes), None)
             for link, rows in markers.items() for seq, changes in enumerate(rows)]
    batch.append(batch[0])  # a QoS 1 redelivery of the first (screened) sample
    hub.ingest(batch, NOW)
    assert hub.quarantine.total == 0
    assert (hub.accepted, hub.duplicates) == (7, 1)
    expected: dict[str, dict[str, dict[str, int]]] = {}
    for link, rows in markers.items():  # the truth, from the input itself
        mine = expected.setdefault(link, {})
        for changes in rows:
            for field, value in changes.items():
                reason = BELOW_RANGE if float(value) <= LINK_RANGES[field].low else ABOVE_RANGE
                mine.setdefault(field, {}).setdefault(reason, 0)
                mine[field][reason] += 1
    links = hub.fleet.vehicles["v1"].links
    assert {name: link.fields_not_measured for name, link in links.items()} == expected
    total: dict[str, dict[str, int]] = {}
    for counts in expected.values():
        for field, reasons in counts.items():
            for reason, n in reasons.items():
                total.setdefault(field, {})[reason] = total.get(field, {}).get(reason, 0) + n
    assert hub.fields_not_measured == total
    assert links["l5g"].last is not None and links["l5g"].last.rtt_ms is None
    assert links["lte"].last is not None and links["lte"].last.probe is False


def _drive(**changes: object) -> str:
    """A link's state after 6 s at 10 Hz in which every sample carries ``changes``."""
    hub = Hub(store=open_journal(":memory:"))
    topic = link_topic("s1", "v1", "l5g")
    for step in range(60):
        t = NOW + step / 10
        hub.ingest([(topic, _link_payload(step, t, **changes), None)], t)
        if step % 2 == 0:
            hub.tick(t)
    return hub.fleet.vehicles["v1"].links["l5g"].health.state


def test_rtt_markers_do_not_take_a_link_down() -> None:
    """Six seconds of RTT markers (0 ms) with RSRP markers beside them: no probe, so no
    evidence of an outage, where six seconds of unanswered probes take the link down."""
    assert _drive(rtt_ms=None, probe=True) == DOWN  # the control: the test can fail
    assert _drive(rtt_ms=0, rsrp_dbm=-200) == OK
    assert _drive(rtt_ms=-1, probe=True) == OK


def test_metrics_expose_the_counter_by_field_and_reason() -> None:
    hub = Hub(store=open_journal(":memory:"))
    payload = _link_payload(0, NOW, rsrp_dbm=-205, rtt_ms=0)
    hub.ingest([(link_topic("s1", "v1", "l5g"), payload, None),
                (link_topic("s1", "v2", "lte"), payload, None)], NOW)
    text = exposition(make_registry(HubCollector(hub, buffer=lambda: None,
                                                 mqtt=lambda: None))).decode()
    series = [s for family in text_string_to_metric_families(text) for s in family.samples
              if s.name == "l4mon_fields_not_measured_total"]
    assert {tuple(sorted(s.labels)) for s in series} == {("field", "reason")}  # no vehicle
    samples = {(s.labels["field"], s.labels["reason"]): s.value for s in series}
    assert samples[("rsrp_dbm", BELOW_RANGE)] == 2
    assert samples[("rtt_ms", BELOW_RANGE)] == 2
    assert samples[("rtt_ms", ABOVE_RANGE)] == 0  # every series exists from the start
    assert set(samples) == {(f, r) for f in LINK_RANGES for r in REASONS}
