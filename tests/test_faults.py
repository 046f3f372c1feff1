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


def test_unwritable_journal_keeps_alerting_then_journals_everything_once() -> None:
    """No file writes allowed: alerts still reach the console marked NOT JOURNALED YET, their
    QoS 1 acknowledgements wait, health and metrics say so; once writes work again every alert
    is journaled exactly once and the hub's own journal_unavailable alert is raised and
    resolved in the journal too."""
    outcome = faults.journal_unwritable(before=3, during=10, after=3)
    assert outcome.facts["missing"] == {"before": [], "during": [], "after": []}
    assert outcome.facts["marked"]["during"] == 10 and outcome.facts["marked"]["before"] == 0
    assert outcome.facts["health_status"] == "degraded"
    assert outcome.facts["acks_held"] >= 10
    assert outcome.facts["metric_failures"] >= 10
    assert set(outcome.facts["journaled"].values()) == {1}
    assert len(outcome.facts["journaled"]) == 16
    assert outcome.facts["own"] == [("resolved", 1)]
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


@pytest.mark.parametrize("kind", ["restart", "kill", "cut", "disk_full"])
def test_a_failing_journal_loses_and_repeats_no_takeover_request(kind: str) -> None:
    """QoS 1 takeover requests flow while the journal fails under them (PostgreSQL restarted,
    crashed or its session cut; SQLite's filesystem full): every one is shown live, and ends
    as exactly one journaled alert once the journal is back, without a restart."""
    outcome = faults.journal_fault(kind, events=60, rate=30.0, down_s=1.5)
    assert outcome.facts["shown"] == 60
    assert outcome.facts["lost"] == outcome.facts["duplicated"] == 0
    assert outcome.facts["caught_up_s"] is not None
    assert outcome.ok, outcome


def test_a_single_hub_rides_out_a_database_restart_under_load_with_operators_acting() -> None:
    """PostgreSQL restarted under 3,000 msg/s of telemetry and a stream of takeover requests
    while an operator acknowledges: never a 500 (503 naming the journal while it is away),
    every request one journaled alert, every acknowledgement answered 200 journaled, and the
    hub leads again by itself."""
    outcome = faults.journal_fault("restart", events=90, rate=30.0, down_s=3.0, load=3_000.0)
    assert set(outcome.facts["answers"]) <= {200, 409, 503}
    assert outcome.facts["answers"].get(503, 0) > 0  # the operator did act during the restart
    assert outcome.facts["acks_journaled"] == outcome.facts["acked_by_operator"] > 0
    assert outcome.facts["lost"] == outcome.facts["duplicated"] == 0
    assert outcome.ok, outcome
