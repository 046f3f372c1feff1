"""Leave-drives-out evaluation of the link map: does a map of past drives warn of outages and
degradations before the next drive meets them?

Run: ``.venv/bin/python bench/linkmap_eval.py [--data ../shared/data] [--horizon 20]
[--threshold 0.5] [--cell-m 25] [--no-sim]``; other repeated drives of one route:
``--runs 'cicv5g/w2s_*.txt' [--format cicv5g|gnettrack]`` (files under ``--data``, imported
one drive each) or ``--logs LOG LOG ...`` (drive logs already imported or recorded).

For each drive of a repeated route, a map is built from the *other* drives
(``scenarios.linkmap_build``: each log replayed through the hub, per-drive maps merged) and
the held-out drive is replayed through the hub too, keeping at each 0.25 s tick the
vehicle's position, heading, speed and each link's state. Then, per link:

* **event**: the hub's link state turning down/stale from ok/degraded (an outage start) or
  ok → degraded (a degradation start): what an operator is alerted to;
* **warning**: the map's look-ahead rule (``telemetry.linkmap.WeakAhead``) holds: a cell
  along the heading within ``speed × horizon`` metres (the current one included) was
  impaired (degraded or down at some tick) on at least ``threshold`` of its ≥ 2 past passes.
  A warning *episode* is a run of ticks in which it holds;
* an event is **warned** when an episode started at or before it and had not ended more than
  ``GRACE_S`` before it; its **lead** is the time from that episode's start. Recall counts
  events warned with a lead of at least ``LEAD_MIN_S`` (5 s);
* an episode is **false** when no event follows from its start to ``GRACE_S`` after its end.
  Precision = episodes followed by an event / all episodes.

``GRACE_S`` (5 s) allows for the hub's own lag: a verdict on a 10 s RTT window with a 1 s
hold, so a stall is judged a second or more after the vehicle met it.

Data:

1. the five CICV5G ``w2s_n8_v30_run0*`` runs (Zhang et al., Zenodo 10.5281/zenodo.17475688,
   CC BY 4.0), one road driven five times into and out of a weak zone on the private n8
   network, imported with ``l4mon import cicv5g`` into a temporary directory (skipped, with the
   reason, where ``../shared/data`` is absent);
2. a simulated route (the demo site's loop, snow in daylight) with two placed weak spots on
   the local 5G link: one where the modem reports no service on 80 % of passes, one where
   RTT rises by 400 ms on 70 % of passes; five drives of three laps, each its own seed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any, Final

from l4mon.config import config_from_dict
from scenarios import replay
from scenarios.importers import import_files
from scenarios.linkmap_build import MapBuilder, event_of
from scenarios.scenario import prepare, run_prepared
from telemetry.linkmap import Grid, LinkMap, WeakAhead, write_map
from telemetry.site import distance_m
from telemetry.window import percentile
from telemetry.wire import LinkSample
from testing.linkmap_sim import SPOTS, PlacedSpot, sim_logs

if TYPE_CHECKING:
    from l4mon.hub import Hub

LEAD_MIN_S: Final = 5.0
GRACE_S: Final = 5.0
POSITION_MAX_AGE_S: Final = 3.0
#: How far past a placed spot's edge an event still counts as the spot's: the hub's verdict
#: comes a few seconds after the radio (hold and window) at ~6 m/s.
SPOT_LAG_M: Final = 60.0


def shared_data() -> Path:
    """``$L4MON_SHARED_DATA``, or ``../shared/data`` beside the repository."""
    env = os.environ.get("L4MON_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


# -- the held-out drive as the hub saw it -----------------------------------------------------

@dataclass(slots=True)
class Tick:
    t: float
    lat: float | None
    lon: float | None
    heading: float | None
    speed: float | None
    states: dict[str, str]
    #: The vehicle's usable links together under its uplink requirement (None: not judged).
    short: bool | None = None


@dataclass
class Timeline:
    """A replay watcher keeping, per vehicle, each tick's pose and link states."""

    ticks: dict[str, list[Tick]] = field(default_factory=dict)
    hub: Hub | None = None

    def attach(self, hub: Hub) -> None:
        self.hub = hub

    def sample(self, vehicle: str, link: str, msg: LinkSample, now: float) -> None:
        return None

    def tick(self, now: float, interval: float) -> None:
        assert self.hub is not None
        for vid, v in self.hub.fleet.vehicles.items():
            s = v.state
            fresh = s is not None and v.state_rx is not None \
                and now - v.state_rx <= POSITION_MAX_AGE_S
            need = self.hub.config.requirements.ul_requirement(vid)
            usable = v.ul_kbps_usable(now, self.hub.config.links.window_s) \
                if need is not None else None
            self.ticks.setdefault(vid, []).append(Tick(
                now, s.lat if fresh and s else None, s.lon if fresh and s else None,
                s.heading_deg if fresh and s else None, s.speed_mps if fresh and s else None,
                {name: link.health.state for name, link in v.links.items()},
                None if usable is None or need is None else usable < need))


def timeline(log: Path) -> tuple[Timeline, str, str]:
    prepared = prepare(log)
    watch = Timeline()
    replay.run(prepared.stream, config=prepared.config, site=prepared.site,
               rules=prepared.rules, not_measured=prepared.info.get("not_measured", ()),
               watcher=watch)
    cond = prepared.info["conditions"]
    return watch, cond["weather"], cond["light"]


# -- scoring --------------------------------------------------------------------------------

@dataclass
class Score:
    events: int = 0
    warned: int = 0  # with a lead >= LEAD_MIN_S
    late: int = 0  # warned, but with less lead
    episodes: int = 0
    false: int = 0
    leads: list[float] = field(default_factory=list)
    #: Events at a placed weak spot (simulation), and of those warned >= LEAD_MIN_S ahead.
    at_spots: int = 0
    warned_at_spots: int = 0

    def add(self, other: Score) -> None:
        self.at_spots += other.at_spots
        self.warned_at_spots += other.warned_at_spots
        self.events += other.events
        self.warned += other.warned
        self.late += other.late
        self.episodes += other.episodes
        self.false += other.false
        self.leads += other.leads

    @property
    def precision(self) -> float | None:
        return (self.episodes - self.false) / self.episodes if self.episodes else None

    @property
    def recall(self) -> float | None:
        return self.warned / self.events if self.events else None


def _at_spot(where: tuple[float, float] | None, spots: Sequence[PlacedSpot]) -> bool:
    """Within a placed spot, or up to SPOT_LAG_M past its edge (the hub judges late)."""
    return where is not None and any(
        distance_m(*where, s.lat, s.lon) <= s.radius_m + SPOT_LAG_M for s in spots)


Episodes = dict[tuple[str, str], list[list[float]]]


def rule_episodes(line: Timeline, rule: WeakAhead, weather: str, light: str) -> Episodes:
    """Runs of ticks in which the look-ahead rule holds, per (vehicle, link)."""
    out: Episodes = {}
    for vid, ticks in line.ticks.items():
        for link in sorted({name for t in ticks for name in t.states}):
            episodes = out.setdefault((vid, link), [])
            on = False
            for t in ticks:
                warn = t.lat is not None and t.lon is not None and rule.check(
                    lat=t.lat, lon=t.lon, heading_deg=t.heading, speed_mps=t.speed, link=link,
                    weather=weather, light=light) is not None
                if warn and not on:
                    episodes.append([t.t, t.t])
                elif warn:
                    episodes[-1][1] = t.t
                on = warn
    return out


def alert_episodes(doc: dict[str, Any], end: float) -> Episodes:
    """The hub's ``weak_link_ahead`` warnings of a replay, raised to resolved (or the end)."""
    out: Episodes = {}
    for a in doc["alerts"]:
        if a["rule"] == "weak_link_ahead":
            out.setdefault((a["vehicle"], a["link"]), []).append(
                [a["raised_at"], a["resolved_at"] or end])
    return out


def score(line: Timeline, episodes_of: Episodes, spots: Sequence[PlacedSpot] = (),
          kinds: tuple[str, ...] = ("outage", "degradation")) -> Score:
    out = Score()
    for vid, ticks in line.ticks.items():
        links = sorted({name for t in ticks for name in t.states})
        for link in links:
            events: list[float] = []
            placed: set[float] = set()
            episodes = sorted(episodes_of.get((vid, link), []))
            before = "unknown"
            was_short = False
            where: tuple[float, float] | None = None
            for t in ticks:
                if t.lat is not None and t.lon is not None:
                    where = (t.lat, t.lon)
                state = t.states.get(link, "unknown")
                # "short": the vehicle's links together fell under its uplink requirement
                # while this link was usable (what the unfit measure counts besides outages)
                short = t.short is True and state in ("ok", "degraded")
                if event_of(before, state) in kinds or ("short" in kinds and short
                                                        and not was_short):
                    events.append(t.t)
                    if _at_spot(where, spots):
                        placed.add(t.t)
                before = state
                was_short = short
            out.events += len(events)
            out.at_spots += len(placed)
            out.episodes += len(episodes)
            for e in events:
                starts = [s for s, end in episodes if s <= e <= end + GRACE_S]
                if starts:
                    lead = e - max(starts)
                    out.leads.append(lead)
                    if lead >= LEAD_MIN_S:
                        out.warned += 1
                        out.warned_at_spots += e in placed
                    else:
                        out.late += 1
            out.false += sum(1 for s, end in episodes
                             if not any(s <= e <= end + GRACE_S for e in events))
    return out


def hub_warnings(log: Path, fold: LinkMap, tmp: Path, *, horizon: float,
                 threshold: float, measure: str = "impaired") -> Episodes:
    """Replay the held-out log as ``l4mon replay LOG --linkmap MAP`` does (the hub's own
    rule engine, rule ``weak_link_ahead``), judging passes by ``measure``."""
    where = tmp / f"fold-{log.name}"
    shutil.rmtree(where, ignore_errors=True)
    write_map(where, fold)
    config = config_from_dict({"linkmap": {"horizon_s": horizon, "threshold": threshold,
                                           "measure": measure}})
    prepared = prepare(log, config=config, linkmap=str(where))
    doc = run_prepared(prepared)
    return alert_episodes(doc, doc["span"]["end"] or 0.0)


# -- leave one drive out --------------------------------------------------------------------

def per_drive_maps(logs: Sequence[Path], cell_m: float) -> list[LinkMap]:
    """One map per log, all on the first log's grid (so that any of them merge)."""
    maps: list[LinkMap] = []
    grid: Grid | None = None
    for log in logs:
        builder = MapBuilder(cell_m=cell_m, grid=grid)
        builder.add_log(log)
        maps.append(builder.result())
        grid = maps[0].grid
    return maps


def leave_one_out(maps: list[LinkMap], i: int) -> LinkMap:
    merged = LinkMap(maps[0].grid)
    for j, m in enumerate(maps):
        if j != i:
            merged.merge(m)
    return merged


def evaluate(name: str, logs: list[Path], *, cell_m: float, horizon: float, threshold: float,
             sweep: Sequence[tuple[float, float]], spots: Sequence[PlacedSpot] = (),
             tmp: Path | None = None) -> None:
    started = time.perf_counter()
    maps = per_drive_maps(logs, cell_m)
    lines = [timeline(log) for log in logs]
    folds = [leave_one_out(maps, i) for i in range(len(logs))]
    print(f"\n## {name}: leave one drive out, {len(logs)} drives, {cell_m:g} m cells "
          f"(maps and replays {time.perf_counter() - started:.1f} s)")
    print(f"warning: a cell within {horizon:g} s ahead impaired on >= {threshold:.0%} of its "
          f">= 2 past passes; warned = lead >= {LEAD_MIN_S:g} s\n")
    print("| held out | events | warned >= 5 s | late | missed | warnings | false | "
          "leads, s |")
    print("|---|---|---|---|---|---|---|---|")
    total = Score()
    for log, fold, (line, weather, light) in zip(logs, folds, lines, strict=True):
        s = score(line, rule_episodes(line, WeakAhead(fold, horizon_s=horizon,
                                                      threshold=threshold), weather, light),
                  spots)
        total.add(s)
        leads = ", ".join(f"{x:.1f}" for x in sorted(s.leads)) or "-"
        print(f"| {log.name} | {s.events} | {s.warned} | {s.late} | "
              f"{s.events - s.warned - s.late} | {s.episodes} | {s.false} | {leads} |")
    print(f"\n{name}: precision {_pct(total.precision)} "
          f"({total.episodes - total.false}/{total.episodes} warnings followed by an event), "
          f"recall {_pct(total.recall)} ({total.warned}/{total.events} events warned >= "
          f"{LEAD_MIN_S:g} s ahead), lead time median {_s(_median(total.leads))} "
          f"(p25 {_s(percentile(sorted(total.leads), 25))}, "
          f"p75 {_s(percentile(sorted(total.leads), 75))}, n {len(total.leads)})")
    if spots:
        print(f"of the events, {total.at_spots} at a placed weak spot (within its radius + "
              f"{SPOT_LAG_M:g} m): {total.warned_at_spots} warned >= {LEAD_MIN_S:g} s ahead; "
              f"the other {total.events - total.at_spots} are the simulator's own (snow fades, "
              f"cell edges): {total.warned - total.warned_at_spots} warned")
    if tmp is not None:
        for measure, kinds, what in (
                ("impaired", ("outage", "degradation"), "outages and degradations"),
                ("unfit", ("outage", "short"), "outages and uplink shortfalls")):
            hub = Score()
            for log, fold, (line, _, _) in zip(logs, folds, lines, strict=True):
                hub.add(score(line, hub_warnings(log, fold, tmp, horizon=horizon,
                                                 threshold=threshold, measure=measure),
                              spots, kinds))
            print(f"{name}, the hub's own warnings (rule weak_link_ahead in `l4mon replay LOG "
                  f"--linkmap MAP`, raised only while the link is usable, at the vehicle's "
                  f"turn), measure {measure}, events = {what}: precision "
                  f"{_pct(hub.precision)} ({hub.episodes - hub.false}/{hub.episodes}), "
                  f"recall {_pct(hub.recall)} ({hub.warned}/{hub.events}), lead time median "
                  f"{_s(_median(hub.leads))}")
    if sweep:
        print("\n| horizon, s | threshold | precision | recall | median lead, s |")
        print("|---|---|---|---|---|")
        for h, th in sweep:
            t = Score()
            for fold, (line, weather, light) in zip(folds, lines, strict=True):
                t.add(score(line, rule_episodes(line, WeakAhead(fold, horizon_s=h,
                                                                threshold=th), weather, light)))
            print(f"| {h:g} | {th:.2f} | {_pct(t.precision)} | {_pct(t.recall)} | "
                  f"{_s(_median(t.leads))} |")


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


# -- data -------------------------------------------------------------------------------------

W2S_RUNS: Final = "cicv5g/w2s_n8_v30_run0*.txt"


def imported_logs(data: Path, pattern: str, fmt: str, tmp: Path) -> list[Path] | None:
    """Each file matching ``pattern`` under ``data`` imported as one drive log."""
    runs = sorted(data.glob(pattern))
    if len(runs) < 3:
        print(f"\n## {pattern}: skipped: fewer than three runs match it in {data} "
              "(../shared/data is not part of the project)")
        return None
    logs = []
    for run in runs:
        out = tmp / run.stem
        import_files(fmt, [run], out)  # type: ignore[arg-type]
        logs.append(out)
    return logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--cell-m", type=float, default=25.0)
    parser.add_argument("--horizon", type=float, default=20.0, help="seconds ahead")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="share of past passes impaired")
    parser.add_argument("--no-sim", action="store_true", help="only the real runs")
    parser.add_argument("--runs", default=W2S_RUNS,
                        help=f"glob under --data of one route's runs (default {W2S_RUNS})")
    parser.add_argument("--format", default="cicv5g", choices=["cicv5g", "gnettrack"],
                        help="the runs' format (l4mon import)")
    parser.add_argument("--logs", nargs="+", type=Path, default=None,
                        help="drive logs of one route instead of --runs")
    args = parser.parse_args(argv)
    sweep = [(h, th) for h in (10.0, 20.0, 30.0) for th in (0.25, 0.5, 0.75)]
    with tempfile.TemporaryDirectory(prefix="l4mon-linkmap-") as tmp:
        logs = args.logs or imported_logs(args.data, args.runs, args.format, Path(tmp))
        if logs:
            name = "given drive logs" if args.logs else (
                "CICV5G W2S n8 (real, one road x5)" if args.runs == W2S_RUNS else args.runs)
            evaluate(name, logs, cell_m=args.cell_m, horizon=args.horizon,
                     threshold=args.threshold, sweep=sweep, tmp=Path(tmp))
        if not args.no_sim:
            evaluate("simulated loop, snow/daylight, two placed weak spots",
                     sim_logs(Path(tmp)), cell_m=args.cell_m, horizon=args.horizon,
                     threshold=args.threshold, sweep=sweep, spots=SPOTS, tmp=Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
