"""The quick fault scenarios of bench/faults.py, against real Mosquitto and ``l4mon serve``.

Each runs real processes on loopback and counts what the fault cost; ``hub_kill9`` (under
blaster load) stays in the bench, and tests/test_alert_crash.py covers kill -9 itself.
"""

from __future__ import annotations

import pytest

from bench import faults

pytestmark = pytest.mark.mqtt


def test_broker_restart_loses_no_qos1_event() -> None:
    """Broker restarted mid-stream with persistence: every QoS 1 event gives exactly one alert,
    including those sent while the broker was down."""
    outcome = faults.broker_restart(events=150, rate=60.0, down_s=1.0)
    assert outcome.facts["while_down"] > 0
    assert outcome.facts["lost"] == outcome.facts["duplicated"] == 0
    assert outcome.ok, outcome


def test_unwritable_journal_keeps_alerting_and_says_so() -> None:
    """No file writes allowed: alerts still reach the console marked NOT JOURNALED, health and
    metrics report it, and the journal is intact with exactly the alerts around the fault."""
    outcome = faults.journal_unwritable(before=3, during=10, after=3)
    assert outcome.facts["missing"] == {"before": [], "during": [], "after": []}
    assert outcome.facts["marked"] == {"before": 0, "during": 10, "after": 0}
    assert outcome.facts["health_status"] == "degraded"
    assert outcome.facts["metric_failures"] >= 10
    assert outcome.ok, outcome


def test_console_that_stops_reading_is_closed_without_slowing_others() -> None:
    """A stalled console is closed (and counted) once its alert backlog overflows; the other
    console receives every alert, and the hub's memory stays bounded."""
    outcome = faults.slow_console()
    assert outcome.facts["closed"]
    assert outcome.facts["clients_after"] == outcome.facts["clients_before"] - 1
    assert outcome.facts["good_got"] == 2_400
    assert outcome.facts["close_code"] in (1013, None)  # None: the close frame could not fit
    assert outcome.facts["rss_after"] - outcome.facts["rss_before"] < 100
    assert outcome.ok, outcome


def test_ten_thousand_malformed_among_valid_are_counted_exactly() -> None:
    """10,000 malformed messages of eight kinds interleaved with 10,000 valid ones: every valid
    one accepted once, every malformed one quarantined under its reason."""
    outcome = faults.malformed(valid=10_000, bad=10_000)
    ingest = outcome.facts["ingest"]
    assert ingest["accepted"] == 10_000
    assert ingest["quarantined"] == 10_000
    assert ingest["duplicates"] == outcome.facts["lost_seq"] == 0
    assert outcome.facts["counts"] == outcome.facts["sent_by_reason"]
    assert outcome.ok, outcome
