"""A link map in a few lines of text (``l4mon linkmap show``): per link and condition, the
cells that were worst on past passes, and where handovers and ping-pongs cluster."""

from __future__ import annotations

from collections import defaultdict

from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.model import Key, LinkMap

#: A cell needs this many passes to be ranked: one unlucky pass is not a weak spot.
MIN_PASSES = 2


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def summary_lines(linkmap: LinkMap, *, worst: int = 5) -> list[str]:
    grid = linkmap.grid
    conditions = sorted({(d.weather, d.light) for d in linkmap.drives.values()})
    lines = [f"grid {grid.cell_m:g} m cells, origin {grid.origin_lat:.5f}, "
             f"{grid.origin_lon:.5f}; {len(linkmap.rows)} rows (cell, link, condition); "
             f"{len(linkmap.drives)} drive(s) under "
             + (", ".join(f"{w}/{li}" for w, li in conditions) or "no condition")]
    groups: dict[tuple[str, str, str], list[tuple[Key, CellStats]]] = defaultdict(list)
    for key, stats in linkmap.items():
        groups[(key[2], key[3], key[4])].append((key, stats))
    for (link, weather, light), rows in sorted(groups.items()):
        passes = sum(s.passes for _, s in rows)
        outages = sum(s.outage_starts for _, s in rows)
        lines.append(f"\n{link} under {weather}/{light}: {len(rows)} cells, {passes} passes, "
                     f"{outages} outage start(s), "
                     f"{sum(s.degradation_starts for _, s in rows)} degradation start(s)")
        ranked = sorted(
            ((k, s) for k, s in rows if s.passes >= MIN_PASSES
             and (s.passes_impaired or s.outage_starts or s.degradation_starts)),
            key=lambda ks: (-(ks[1].pass_share("passes_impaired") or 0.0),
                            -(ks[1].share_down() or 0.0), ks[0]))
        if not ranked:
            lines.append(f"  no cell impaired on a pass (of cells with >= {MIN_PASSES} "
                         "passes)")
        for key, s in ranked[:worst]:
            lat, lon = grid.centre((key[0], key[1]))
            rtt95 = s.rtt.percentiles(95)[0]
            rsrp05 = s.rsrp.percentiles(5)[0]
            lines.append(
                f"  cell ({key[0]},{key[1]}) {lat:.5f},{lon:.5f}: impaired on "
                f"{s.passes_impaired}/{s.passes} passes ({s.drive_count} drives), down or "
                f"short of uplink (the warning's default measure) on {s.passes_unfit}, "
                f"time degraded {_pct(s.share_degraded())}, down {_pct(s.share_down())}, "
                f"outage starts {s.outage_starts}, RTT p95 {_fmt(rtt95, '.0f', ' ms')}, "
                f"RSRP p5 {_fmt(rsrp05, '.1f', ' dBm')}")
        hot = sorted(((k, s) for k, s in rows if s.handovers or s.failures),
                     key=lambda ks: (-(ks[1].ping_pongs), -(ks[1].handovers + ks[1].failures),
                                     ks[0]))
        for key, s in hot[:worst]:
            pairs = ", ".join(f"{p} x{c}" for p, c in
                              sorted(s.pairs.items(), key=lambda pc: (-pc[1], pc[0]))[:3])
            lines.append(f"  handovers at cell ({key[0]},{key[1]}): {s.handovers} "
                         f"(ping-pong {s.ping_pongs}, failures {s.failures}): {pairs}")
    return lines
