"""Replay: the live pipeline under a virtual clock, bit-identical results, graded scenarios."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest

from l4mon.assembly import build_runtime
from l4mon.clock import ManualClock
from l4mon.config import HubConfig, config_from_dict
from scenarios import replay
from scenarios.scenario import (
    ScenarioError,
    encode_results,
    load_scenario,
    run_log,
    run_scenario,
)
from scenarios.sim import Fault, SimFleet
from telemetry.decode import Decoder
from telemetry.drivelog import (
    Conditions,
    DriveLogError,
    DriveLogWriter,
    Manifest,
    read_table,
    wire_messages,
)
from telemetry.site import DEMO_SITE_PATH, load_site

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "scenarios" / "library"
T0 = 1_767_225_600.0


def _sim_stream(seconds: float = 60.0, *, fault: Fault | None = None, start: float = T0
                ) -> list[replay.Delivery]:
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=3, seed=5, start=start)
    if fault is not None:
        fleet.inject(fault)
    out = []
    for k in range(1, round(seconds / 0.1) + 1):
        now = start + k * 0.1
        out += [(now, topic, payload, None) for topic, payload in fleet.advance(now)]
    return out


def _record(tmp: Path, stream: list[replay.Delivery]) -> Path:
    """Write ``stream`` as a drive log, as the recorder would."""
    decoder = Decoder(max_age_s=1e12)
    writer = DriveLogWriter(tmp / "log", manifest=Manifest(
        site="eiheiji-demo", conditions=Conditions(weather="snow", light="daylight"),
        source={"kind": "test"}), rows_per_file=500)
    for at, topic, payload, _ in stream:
        route, msg, _ = decoder.decode(topic, payload, at)
        writer.add(at, route, msg, topic=topic, payload=payload)
    writer.close()
    return tmp / "log"


def test_drive_log_round_trip_is_byte_exact(tmp_path: Path) -> None:
    """Messages written to a drive log come back as the very bytes that were received."""
    stream = _sim_stream(20.0)
    log = _record(tmp_path, stream)
    assert len(list(log.glob("*.parquet"))) > 1  # several files, read back as one log
    assert list(wire_messages(read_table(log))) == stream


def test_rows_without_payload_are_re_encoded_from_their_columns(tmp_path: Path) -> None:
    """An imported log has no recorded payloads: its typed columns re-encode to the same
    messages (here, the simulator's bytes exactly)."""
    stream = _sim_stream(10.0)
    decoder = Decoder(max_age_s=1e12)
    writer = DriveLogWriter(tmp_path / "imported", manifest=Manifest(site="eiheiji-demo"))
    for at, topic, payload, _ in stream:
        route, msg, _ = decoder.decode(topic, payload, at)
        writer.add(at, route, msg)  # no topic/payload: like an importer
    writer.close()
    assert list(wire_messages(read_table(tmp_path / "imported"))) == stream


def test_replay_decides_exactly_as_the_live_pipeline(tmp_path: Path) -> None:
    """Feeding the hub by hand (ingest per batch, tick every 0.25 s) and replaying the same
    stream raise the same alerts at the same times: replay forks nothing."""
    stream = _sim_stream(60.0, fault=Fault(kind="both_links_down", vehicle="shuttle-02",
                                           start=T0 + 20, duration=15))
    clock = ManualClock(T0)
    config = config_from_dict({"alerts": {"journal": str(tmp_path / "live.sqlite")}})
    hub = build_runtime(config, clock=clock).hub
    next_tick = T0 + 0.25
    for at, batch in replay.batches(stream):
        while next_tick <= at:
            hub.tick(next_tick)
            next_tick += 0.25
        hub.ingest(batch, at)
    live = [(a.rule, a.vehicle, a.raised_at, a.resolved_at) for a in
            sorted(hub.alerts.journal.alerts(), key=lambda a: a.id)]  # type: ignore[union-attr]
    outcome = replay.run(stream)
    replayed = [(a.rule, a.vehicle, a.raised_at, a.resolved_at) for a in outcome.alerts]
    assert replayed == live
    assert ("both_links_down", "shuttle-02") in {(r, v) for r, v, _, _ in replayed}


def test_same_log_same_results_bit_for_bit(tmp_path: Path) -> None:
    """Two replays of one log write identical results documents."""
    log = _record(tmp_path, _sim_stream(30.0))
    first, second = encode_results(run_log(log)), encode_results(run_log(log))
    assert first == second
    doc = msgspec.json.decode(first)
    assert doc["input"]["conditions"] == {"light": "daylight", "road": "unknown",
                                          "weather": "snow"}
    assert set(doc["kpis"]) == {"shuttle-01", "shuttle-02", "shuttle-03"}


def test_kpis_match_an_independent_count(tmp_path: Path) -> None:
    """Whole-run RTT percentiles equal numpy's over the answered probes of that link."""
    import numpy as np

    stream = _sim_stream(30.0)
    outcome = replay.run(stream)
    kpis = replay.kpis(outcome)
    rtts = [msgspec.json.decode(p).get("rtt_ms") for _, t, p, _ in stream
            if t.endswith("shuttle-01/link/lte")]
    answered = [r for r in rtts if r is not None]
    link = kpis["shuttle-01"]["links"]["lte"]
    assert link["samples"] == len(rtts)
    assert link["rtt_p99_ms"] == pytest.approx(np.percentile(answered, 99), abs=1e-3)
    assert link["rtt_p50_ms"] == pytest.approx(np.percentile(answered, 50), abs=1e-3)


def test_library_scenarios_pass_and_are_deterministic() -> None:
    """Every scenario of the library passes, and running it twice gives the same bytes."""
    paths = sorted(LIBRARY.glob("*.toml"))
    assert paths
    for path in paths:
        doc = run_scenario(path)
        assert doc["verdict"] == "pass", (path.name, [e for e in doc["expectations"]
                                                     if not e["passed"]])
    first = paths[0]
    assert encode_results(run_scenario(first)) == encode_results(run_scenario(first))


def test_a_failing_expectation_fails_the_verdict(tmp_path: Path) -> None:
    """A scenario expecting an alert that cannot happen fails, naming the expectation."""
    text = (LIBRARY / "both-links-down-daylight.toml").read_text()
    broken = text.replace('vehicle = "shuttle-02"\nafter_fault', 'vehicle = "shuttle-03"\n'
                          'after_fault')
    assert broken != text
    path = tmp_path / "broken.toml"
    path.write_text(broken)
    doc = run_scenario(path)
    assert doc["verdict"] == "fail"
    assert [e["id"] for e in doc["expectations"] if not e["passed"]] == ["raised-in-time"]


@pytest.mark.parametrize(("text", "needle"), [
    ('name = "x"\n', "either [generator] or logs"),
    ('name = "x"\nlogs = ["a"]\n[generator]\n', "either [generator] or logs"),
    ('name = "x"\n[generator]\n[[expect]]\ntype = "alert"\nrule = "r"\nwithin_s = 1.0\n',
     "after_fault or at_s"),
    ('name = "x"\n[generator]\n[[expect]]\ntype = "kpi"\nmetric = "rtt_p99_ms"\n',
     "min and/or max"),
    ('name = "x"\n[generator]\nvehicle = 3\n', "vehicle"),
    ('name = "x"\n[generator]\n[[fault]]\nkind = "meteor"\nvehicle = "a"\nat_s = 1\n'
     'duration_s = 1\n', "meteor"),
])
def test_bad_scenarios_are_clear_errors(tmp_path: Path, text: str, needle: str) -> None:
    """A scenario that cannot run says why before anything runs."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=None) as info:
        load_scenario(path)
    assert needle in str(info.value)


def test_log_faults_are_deterministic_stream_edits(tmp_path: Path) -> None:
    """On a recorded log, a link outage removes that link's samples in the window, and
    packet loss drops the same samples every time."""
    log = _record(tmp_path, _sim_stream(40.0))
    scenario = tmp_path / "faults.toml"
    scenario.write_text(f'''
name = "log-faults"
logs = ["{log.name}"]
[[fault]]
id = "lte-out"
kind = "link_down"
vehicle = "shuttle-01"
link = "lte"
at_s = 10
duration_s = 10
[[fault]]
kind = "packet_loss"
vehicle = "shuttle-02"
value = 0.3
at_s = 0
duration_s = 40
[[expect]]
type = "kpi"
metric = "loss_ratio"
vehicle = "shuttle-03"
max = 0.0
''')
    first, second = run_scenario(scenario), run_scenario(scenario)
    assert encode_results(first) == encode_results(second)
    lte = first["kpis"]["shuttle-01"]["links"]["lte"]
    assert lte["time_in_state_s"].get("stale", 0) >= 8.0
    loss = first["kpis"]["shuttle-02"]["links"]["l5g"]["loss_ratio"]
    assert 0.2 < loss < 0.4
    assert first["verdict"] == "pass"


def test_cli_exit_codes(tmp_path: Path) -> None:
    """l4mon replay: 0 when expectations hold, 1 when one fails, 2 on bad input."""
    def replay_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "l4mon", "replay", *args], check=False,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    out = tmp_path / "results.json"
    ok = replay_cli(str(LIBRARY / "both-links-down-daylight.toml"), "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    assert msgspec.json.decode(out.read_bytes())["verdict"] == "pass"
    broken = tmp_path / "broken.toml"
    broken.write_text((LIBRARY / "both-links-down-daylight.toml").read_text().replace(
        "within_s = 2.0", "within_s = 0.1"))
    assert replay_cli(str(broken)).returncode == 1
    bad = replay_cli(str(tmp_path / "missing-dir"))
    assert bad.returncode == 2 and "no such file or directory" in bad.stderr
    (tmp_path / "empty-dir").mkdir()
    bad = replay_cli(str(tmp_path / "empty-dir"))
    assert bad.returncode == 2 and "neither a drive log nor a folder of drive logs" in bad.stderr
    assert replay_cli(str(broken), "--speed", "3").returncode == 2


def test_a_log_of_another_schema_is_refused(tmp_path: Path) -> None:
    """A manifest of another schema is a clear DriveLogError."""
    log = tmp_path / "log"
    log.mkdir()
    (log / "manifest.json").write_text('{"schema": "something-else", "version": 1}')
    with pytest.raises(DriveLogError, match="something-else"):
        read_table(log)


def test_replay_needs_messages() -> None:
    """An empty stream is bad input, not an empty success."""
    with pytest.raises(ValueError, match="nothing to replay"):
        replay.run([], config=HubConfig())


def test_a_fault_placed_at_an_intersection_starts_on_entry() -> None:
    """A placed fault begins when the vehicle's reported position first enters the zone; the
    alert follows that moment, found here independently from the generated positions."""
    from scenarios.scenario import _generated

    path = LIBRARY / "both-links-down-at-intersection-snow.toml"
    spec = load_scenario(path)
    doc = run_scenario(path)
    assert doc["verdict"] == "pass"
    stream, site, _ = _generated(spec, path.parent)
    zone = site.intersection("ix-araya")
    assert zone is not None
    start = spec.generator.start  # type: ignore[union-attr]
    positions = ((at - start, msgspec.json.decode(payload)) for at, topic, payload, _ in stream
                 if topic.endswith("shuttle-01/state"))
    entry = next(offset for offset, state in positions
                 if offset >= 5.0 and zone.contains(state["lat"], state["lon"]))
    raised = [a["raised_offset_s"] for a in doc["alerts"]
              if a["rule"] == "both_links_down" and a["vehicle"] == "shuttle-01"]
    assert len(raised) == 1 and entry < raised[0] <= entry + 2.0


def test_a_fault_at_an_unknown_intersection_is_refused(tmp_path: Path) -> None:
    """Naming an intersection the site does not have is an error before anything runs."""
    path = tmp_path / "bad-place.toml"
    path.write_text('name = "x"\n[generator]\nduration_s = 5\n[[fault]]\nkind = "rtt_spike"\n'
                    'vehicle = "shuttle-01"\nat_s = 0\nduration_s = 1\n'
                    'at_intersection = "nowhere"\n')
    with pytest.raises(ScenarioError, match="nowhere"):
        run_scenario(path)


def test_replay_of_a_real_trace_lists_its_handovers(tmp_path: Path) -> None:
    """The CICV5G excerpt (CC BY 4.0) through the importer and replay: results.json lists one
    successful handover per serving-cell change of the source, at the time of the change, and
    none that the source does not have. A change in the last seconds of the input, whose new
    cell has not yet delivered enough to close its interruption, is not reported (by design:
    docs/handover.md), so the check covers changes more than 5 s before the end."""
    from scenarios.importers import import_files

    fixture = ROOT / "tests" / "fixtures" / "cicv5g" / "arterial_n78_v50_excerpt.txt"
    import_files("cicv5g", [fixture], tmp_path / "log")
    rows = [line.split() for line in fixture.read_text().splitlines()[1:] if line.strip()]
    changes = [float(b[1]) / 1000 for a, b in pairwise(rows)
               if a[7] != b[7]]  # column 8 is cellid; sub_time (ms) is the receive time
    end = float(rows[-1][1]) / 1000
    doc = run_log(tmp_path / "log")
    handovers = doc["handovers"]
    settled = [c for c in changes if c < end - 5.0]
    assert settled and len(handovers) <= len(changes)  # nothing invented
    assert [h["kind"] for h in handovers[:len(settled)]] == ["success"] * len(settled)
    assert [h["at"] for h in handovers[:len(settled)]] == pytest.approx(settled, abs=1e-6)
    (vehicle,) = doc["kpis"].values()
    assert vehicle["links"]["pub5g"]["handover_success_rate"] == 1.0


def test_uplink_requirement_kpi_is_the_alert_rules_figure() -> None:
    """``ul_requirement_met`` counts the ticks at which the ok/degraded links' last uplink,
    summed, met the requirement — counted here by hand on a hub fed tick by tick — and a
    bandwidth cap on both links pushes it down, while the alert rule fires."""
    fault = Fault(kind="bandwidth_cap", vehicle="shuttle-02", start=T0 + 15, duration=20)
    stream = _sim_stream(60.0, fault=fault)
    config = HubConfig()
    clock = ManualClock(T0)
    hub = build_runtime(config, clock=clock).hub
    judged: dict[str, int] = {}
    met: dict[str, int] = {}
    next_tick = T0 + 0.25

    def tick(now: float) -> None:
        clock.set(now)
        hub.tick(now)
        for vid, vehicle in hub.fleet.vehicles.items():
            if not vehicle.links:
                continue
            usable = sum(link.last.ul_kbps or 0.0 for link in vehicle.links.values()
                         if link.last is not None and link.health.state in ("ok", "degraded"))
            judged[vid] = judged.get(vid, 0) + 1
            met[vid] = met.get(vid, 0) + (usable >= config.requirements.ul_required(vid))

    last = T0
    for at, batch in replay.batches(stream):
        while next_tick <= at:
            tick(next_tick)
            next_tick += 0.25
        clock.set(at)
        hub.ingest(batch, at)
        last = at
    while next_tick <= last:
        tick(next_tick)
        next_tick += 0.25
    outcome = replay.run(stream)
    kpis = replay.kpis(outcome)
    for vid, count in judged.items():
        assert kpis[vid]["ul_requirement_judged_s"] == pytest.approx(count * 0.25)
        assert kpis[vid]["ul_requirement_met"] == pytest.approx(met[vid] / count, abs=1e-6)
    assert kpis["shuttle-02"]["ul_requirement_met"] < 0.8
    assert kpis["shuttle-01"]["ul_requirement_met"] > 0.95
    assert "uplink_below_requirement" in {a.rule for a in outcome.alerts
                                          if a.vehicle == "shuttle-02"}


# -- long logs: streamed reading, bounded books, every record kept ------------------------------

def test_streamed_log_is_the_sorted_table_row_for_row(tmp_path: Path) -> None:
    """``iter_wire_messages`` yields exactly ``wire_messages(read_table(...))`` — same rows, same
    order, equal times in file order then row order — for a log whose files overlap in time
    and share timestamps, touch at one time in either path order, are not sorted inside, span
    several row groups, or have no recorded payloads; and the same within a period."""
    import pyarrow.parquet as pq

    from telemetry import drivelog

    messages = _sim_stream(6.0)
    decoder = Decoder(max_age_s=1e12)
    log = tmp_path / "log"
    taken = iter(messages * 2)

    def write(subdir: str, times: list[float], *, payload: bool = True) -> None:
        writer = DriveLogWriter(log, manifest=Manifest(site="eiheiji-demo"), subdir=subdir)
        for at in times:
            sent, topic, data, _ = next(taken)
            route, msg, _ = decoder.decode(topic, data, sent)
            writer.add(T0 + at, route, msg, topic=topic if payload else None,
                       payload=data if payload else None)
        file = writer.flush()
        writer.close()
        assert file is not None
        pq.write_table(pq.read_table(file), file, row_group_size=4)  # several row groups

    write("a", [float(t) for t in range(1, 11) for _ in range(3)])
    write("b", [t + 0.5 * (t % 2) for t in range(5, 13) for _ in range(2)])  # overlaps a
    write("c", [22.0, 20.0, 25.0, 21.0, 22.0, 24.0, 23.0, 22.0])  # not in time order
    write("d", [25.0, 25.0, 26.0, 27.5, 28.0])  # starts where c ends, after it in path order
    write("0", [40.0, 40.0, 41.0, 45.0])  # starts where e ends, before it in path order
    write("e", [35.0, 36.0, 38.0, 40.0, 40.0])
    write("f", [50.0 + 0.25 * k for k in range(20)], payload=False)  # an import's rows
    write("g", [52.0 + 0.5 * k for k in range(12)])  # overlaps f

    files = sorted(str(p) for p in log.rglob("*.parquet"))
    parts = [drivelog._footer(i, f, None, None) for i, f in enumerate(files)]
    groups = drivelog._overlapping([p for p in parts if p is not None])
    merged = sorted(tuple(Path(p.path).parent.name for p in g) for g in groups if len(g) > 1)
    assert merged == [("0", "e"), ("a", "b"), ("f", "g")]  # c and d follow one another

    whole = list(wire_messages(read_table(log)))
    assert len(whole) == 30 + 16 + 8 + 5 + 4 + 5 + 20 + 12
    assert list(drivelog.iter_wire_messages(log)) == whole
    assert list(drivelog.iter_wire_messages(log, batch_rows=3)) == whole
    for start, end in ((T0 + 5, T0 + 23), (T0 + 22, T0 + 22.1), (T0 + 40, None),
                       (None, T0 + 9.5), (T0 + 53, T0 + 56), (T0 + 100, None)):
        period = [d for d in whole if (start is None or d[0] >= start)
                  and (end is None or d[0] < end)]
        assert list(drivelog.iter_wire_messages(log, start=start, end=end,
                                                batch_rows=2)) == period, (start, end)


def test_a_log_replays_the_same_streamed_as_from_the_whole_table(tmp_path: Path) -> None:
    """``run_log`` (now streamed) gives the document a replay of the whole table gives."""
    from scenarios.scenario import results_document

    log = _record(tmp_path, _sim_stream(30.0))
    doc = run_log(log)
    outcome = replay.run(wire_messages(read_table(log)))
    whole = results_document(input_info=doc["input"], outcome=outcome, expectations=[])
    assert encode_results(doc) == encode_results(whole)


def test_kpis_past_the_exact_cap_say_so_and_stay_within_the_error() -> None:
    """With a small cap the replay's RTT percentiles come from the sketch: the KPIs say
    ``±0.1 %`` and agree with numpy within it (and the KPIs' rounding to 0.001 ms)."""
    import numpy as np

    stream = _sim_stream(30.0)
    exact = replay.kpis(replay.run(stream))
    sketched = replay.kpis(replay.run(stream, rtt_exact_max=50))
    rtts = [msgspec.json.decode(p).get("rtt_ms") for _, t, p, _ in stream
            if t.endswith("shuttle-01/link/lte")]
    answered = [r for r in rtts if r is not None]
    assert len(answered) > 50
    link = sketched["shuttle-01"]["links"]["lte"]
    assert link["rtt_percentiles"] == "±0.1 %" and link["exact"] is False
    assert exact["shuttle-01"]["links"]["lte"]["rtt_percentiles"] == "exact"
    assert exact["shuttle-01"]["links"]["lte"]["exact"] is True
    for q in (50, 95, 99):
        want = float(np.percentile(answered, q))
        assert abs(link[f"rtt_p{q}_ms"] - want) <= 1e-3 * want + 5e-4 + 1e-9
    def others(figures: dict) -> dict:
        return {k: v for k, v in figures.items() if not k.startswith("rtt_") and k != "exact"}

    for vid, vehicle in exact.items():  # nothing else moves
        for name, figures in vehicle["links"].items():
            assert others(figures) == others(sketched[vid]["links"][name])


def test_every_handover_and_failover_is_kept_past_the_live_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The live hub keeps the newest HANDOVERS_KEPT records; a replay's results and KPIs still
    count all of them (before, a long log's were silently cut to that bound)."""
    import handover.book

    path = LIBRARY / "both-links-down-at-intersection-snow.toml"
    full = run_scenario(path)
    handovers = len(full["handovers"])
    failovers = sum(v["failovers"] for v in full["kpis"].values())
    assert handovers > 1 and failovers > 1
    monkeypatch.setattr(handover.book, "HANDOVERS_KEPT", 1)
    assert handover.book.HandoverBook().kept.maxlen == 1  # the live bound, as it stays
    bounded = run_scenario(path)
    assert len(bounded["handovers"]) == handovers
    assert sum(v["failovers"] for v in bounded["kpis"].values()) == failovers
    assert encode_results(bounded) == encode_results(full)


def test_separate_drives_replay_as_sessions() -> None:
    """Two drives two days apart in one input: each is its own session. The days between are
    neither drive nor link time (no ticks, no staleness alerts), the second drive starts with
    no vehicle known, and a vehicle that drove both has its figures added up."""
    first = _sim_stream(30.0)
    day2 = 2 * 86_400.0
    second = _sim_stream(20.0, start=T0 + day2)
    outcome = replay.run([*first, *second])
    assert [(round(s.start, 3), round(s.end, 3)) for s in outcome.sessions] == [
        (round(first[0][0], 3), round(first[-1][0], 3)),
        (round(second[0][0], 3), round(second[-1][0], 3))]
    assert outcome.active_s == pytest.approx((first[-1][0] - first[0][0])
                                             + (second[-1][0] - second[0][0]))
    assert outcome.hub.ticks < 60 / 0.25 + 10  # the two days were skipped, not ticked through
    stale = {"both_links_down", "telemetry_stale"}
    assert not [a for a in outcome.alerts if a.rule in stale]
    kpis = replay.kpis(outcome)
    once = replay.kpis(replay.run(first))
    for vid, kp in kpis.items():
        hours = sum(outcome.vehicle_time[vid].values())
        assert hours == pytest.approx(50.0, abs=0.5)  # 30 s + 20 s, not two days
        for name, link in kp["links"].items():
            assert link["samples"] > once[vid]["links"][name]["samples"]
            assert link["loss_ratio"] == 0.0  # the restart of seq is not loss
    assert len(outcome.retired) == len(outcome.hub.fleet.vehicles) == 3


def test_no_uplink_reported_is_not_an_uplink_shortfall() -> None:
    """Links that never report their uplink (CICV5G's round trips, a modem without the
    figure): the usable uplink is not measured, so uplink_below_requirement never fires and
    the KPI is null with no coverage; the same stream with its uplink fires as before."""
    fault = Fault(kind="bandwidth_cap", vehicle="shuttle-02", start=T0 + 10, duration=30)
    stream = _sim_stream(50.0, fault=fault)
    stripped = []
    for at, topic, payload, ctype in stream:
        data = payload
        if "/link/" in topic:
            sample = msgspec.json.decode(payload)
            sample.pop("ul_kbps", None)
            sample.pop("dl_kbps", None)
            data = msgspec.json.encode(sample)
        stripped.append((at, topic, data, ctype))
    with_ul = replay.run(stream)
    without = replay.run(stripped)
    assert any(a.rule == "uplink_below_requirement" for a in with_ul.alerts)
    assert not any(a.rule == "uplink_below_requirement" for a in without.alerts)
    kpis = replay.kpis(without)["shuttle-02"]
    assert kpis["ul_requirement_met"] is None and kpis["ul_requirement_coverage"] == 0.0
    assert kpis["links"]["l5g"]["ul_kbps_mean"] is None and kpis["links"]["l5g"]["ul_samples"] == 0


def _with_markers(stream: list[replay.Delivery]
                  ) -> tuple[list[replay.Delivery], dict[tuple[str, str, str], int]]:
    """``stream`` with RSRP -200 dBm on some of shuttle-01's l5g samples and an RTT of 0 on
    some of shuttle-02's lte ones, and how many of each were planted."""
    marked = []
    planted = {("shuttle-01", "l5g", "rsrp_dbm"): 0, ("shuttle-02", "lte", "rtt_ms"): 0}
    for n, (at, topic, payload, ctype) in enumerate(stream):
        vehicle, link = topic.split("/")[4], topic.rsplit("/", 1)[-1]
        sample = msgspec.json.decode(payload)
        for (v, name, field), count in planted.items():
            if "/link/" in topic and (vehicle, link) == (v, name) and n % 7 == 0 \
                    and sample.get(field) is not None:
                sample[field] = -200.0 if field == "rsrp_dbm" else 0
                planted[(v, name, field)] = count + 1
        marked.append((at, topic, msgspec.json.encode(sample), ctype))
    assert all(planted.values())
    return marked, planted


def test_kpis_count_figures_outside_their_physical_range_per_link() -> None:
    """Markers in a recorded stream (RSRP -200 dBm, RTT 0) cost their figures only: every
    sample still counts, and each link's KPIs say how many figures were not measured, by field
    and reason (telemetry/ranges.py); the rest of the run's books agree with the clean run."""
    stream = _sim_stream(20.0)
    marked, planted = _with_markers(stream)
    clean, dirty = replay.kpis(replay.run(stream)), replay.kpis(replay.run(marked))
    for (vehicle, link, field), count in planted.items():
        assert dirty[vehicle]["links"][link]["fields_not_measured"] == {
            field: {"below_range": count}}
    for vehicle, figures in dirty.items():
        for link, kpi in figures["links"].items():
            assert kpi["samples"] == clean[vehicle]["links"][link]["samples"]
            if (vehicle, link) not in {(v, name) for v, name, _ in planted}:
                assert kpi["fields_not_measured"] == {}
    rtt = dirty["shuttle-02"]["links"]["lte"]
    # a marker is no probe: fewer probes, and not one more timeout
    assert rtt["probes"] == clean["shuttle-02"]["links"]["lte"]["probes"] \
        - planted[("shuttle-02", "lte", "rtt_ms")]
    assert rtt["probe_timeouts"] == clean["shuttle-02"]["links"]["lte"]["probe_timeouts"]


MARKER_MAPPING = """
name = "logger"
[time]
column = "t"
format = "epoch_s"
[position]
lat = "lat"
lon = "lon"
speed = "v"
[link]
name = "modem"
rat_column = "mode"
rat_values = { "5G" = "nr", "LTE" = "lte" }
cell_id = "cell"
rsrp = "rsrp"
ul = "ul"
[hub_config.requirements]
ul_required_kbps = 0.0
"""


def _marked_drive(tmp: Path, markers: dict[int, int], *, drop_marked: bool) -> dict:
    """A 1 Hz drive, 5G cell A then LTE cell B from row 30, 3.9 Mbit/s up throughout, with
    RSRP ``markers`` (row -> dBm) around the change; imported through ``l4mon import mapped``
    and replayed. ``drop_marked``: the rows with a marker left out, as the importers did."""
    tmp.mkdir()
    rows = []
    for i in range(60):
        mode, cell, rsrp = ("5G", "A", -85) if i < 30 else ("LTE", "B", -95)
        if i in markers and drop_marked:
            continue
        rows.append(f"{T0 + i:.0f},{35.0 + i * 1e-4:.4f},139.0,10.0,{mode},{cell},"
                    f"{markers.get(i, rsrp)},3900")
    (tmp / "logger.toml").write_text(MARKER_MAPPING)
    (tmp / "drive.csv").write_text("t,lat,lon,v,mode,cell,rsrp,ul\n" + "\n".join(rows) + "\n")
    done = subprocess.run([sys.executable, "-m", "l4mon", "import", "mapped", "--mapping",
                           str(tmp / "logger.toml"), str(tmp / "drive.csv"), "--out",
                           str(tmp / "log")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return run_log(tmp / "log")


@pytest.mark.parametrize("markers", [
    {29: -200, 30: -205, 31: -225},  # the last row on A and the first two on B
    {29: -205},
    {30: -225},
], ids=["three", "before", "after"])
def test_rsrp_markers_at_a_handover_are_no_failure(tmp_path: Path, markers: dict[int, int]
                                                   ) -> None:
    """Proof: RSRP markers (-200/-205/-225 dBm) on the rows around a 5G -> LTE
    handover cost those RSRP figures only. The handover is found at the first row on the new
    cell and is no failure, and the link is never down or stale; the same drive without the
    marked rows (what the importers did) shows the failure and outage the issue reported."""
    changed_at = T0 + 30  # the first row on cell B
    doc = _marked_drive(tmp_path / "new", markers, drop_marked=False)
    assert doc["input"]["fields_not_measured"] == {"rsrp_dbm": {"below_range": len(markers)}}
    (handover,) = doc["handovers"]
    assert handover["kind"] != "failure" and handover["at"] == changed_at
    assert handover["interruption_ms"] == 1_000.0  # the rows' own 1 s spacing, nothing more
    (old,) = _marked_drive(tmp_path / "old", markers, drop_marked=True)["handovers"]
    assert old["interruption_ms"] > 1_000.0  # what dropping the rows made of it
    if len(markers) == 3:
        assert old["kind"] == "failure"  # the "link failure"
    assert (handover["from_cell"], handover["to_cell"]) == ("A", "B")
    assert (handover["from_rat"], handover["to_rat"]) == ("nr", "lte")
    link = doc["kpis"]["drive"]["links"]["modem"]
    assert set(link["time_in_state_s"]) == {"ok"}  # never down, stale or unknown
    assert link["samples"] == 60 and link["ul_samples"] == 60
    assert doc["kpis"]["drive"]["failovers"] == 0
    assert not [a["rule"] for a in doc["alerts"] if "down" in a["rule"] or "stale" in a["rule"]]


def test_faults_edit_a_recording_with_markers(tmp_path: Path) -> None:
    """A recording keeps a marked sample's payload as sent; a scenario's faults edit such
    payloads (they are read as sent, markers included) and the hub screens them as live."""
    stream, planted = _with_markers(_sim_stream(30.0))
    log = _record(tmp_path, stream)
    scenario = tmp_path / "faults.toml"
    scenario.write_text(f'''
name = "faults-on-markers"
logs = ["{log.name}"]
[[fault]]
kind = "rtt_spike"
vehicle = "shuttle-02"
link = "lte"
at_s = 0
duration_s = 30
[[fault]]
kind = "cell_outage"
cell = "no-such-cell"
at_s = 5
duration_s = 10
[[fault]]
kind = "handover_storm"
vehicle = "shuttle-01"
link = "l5g"
at_s = 5
duration_s = 5
''')
    doc = run_scenario(scenario)
    for (vehicle, link, field), count in planted.items():
        assert doc["kpis"][vehicle]["links"][link]["fields_not_measured"] == {
            field: {"below_range": count}}
    assert not doc["quarantine"]
