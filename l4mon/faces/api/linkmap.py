"""The link map as a layer for the console's site plot: per grid cell, how one link fared on
past passes under one condition (docs/linkmap.md; the look-ahead that warns from it is
telemetry/linkmap/outlook.py).

The map does not change while the hub runs, so each (link, condition, map) answer is built
once and kept as encoded JSON; it is built on the hub's loop in chunks, yielding between
them, so a big map never holds up ingest for long.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from l4mon.faces.api.deps import ErrorBody
from l4mon.runtime import Runtime
from telemetry.linkmap.ahead import MEASURES
from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import CellIndex
from telemetry.linkmap.outlook import LookAhead, measure_words

#: Cells in one answer, the nearest the site first: a site's roads at 25 m are a few
#: thousand; past this a plot is unreadable anyway, and the answer says it was cut.
MAX_CELLS: Final = 20_000
#: Cells worked out between two yields to the event loop (~a few ms of work).
CHUNK: Final = 500
#: Answers kept: links × (the map's conditions + the hub's current one), a handful.
CACHE_KEEP: Final = 32

Name = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
#: Cell columns, in the order a client reads them (docs/console-api.md, "Link map").
COLUMNS: Final = ("x", "y", "lat", "lon", "south", "west", "north", "east", "passes", "drives",
                  "risk", "pooled", "share_down", "outage_starts", "rtt_p95_ms", "ul_p05_kbps",
                  "worst", "worst_measure")
#: A built layer: its counts, and its cells' columns already encoded (sent as they are).
Layer = tuple[dict[str, Any], msgspec.Raw]
#: The map's links and conditions (each a scan of every row, so asked once per map).
Held = tuple[list[str], list[tuple[str, str]]]
_REFUSALS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "a link or condition the map does not hold (the detail lists those it does)"),
        (401, "no or unknown token"),
        (404, "this hub has no link map ([linkmap] path in its config)"),
        (429, "too many failed token checks from this address; see Retry-After"))}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _centre_of_site(runtime: Runtime, lookahead: LookAhead) -> tuple[float, float, str | None]:
    """Where "nearest the site" is measured from and the light of "now" is worked out at
    (the site's origin, else the map's), and the site whose weather reports count."""
    site = runtime.site or lookahead.site
    if site is not None:
        return site.origin.lat, site.origin.lon, site.name
    grid = lookahead.linkmap.grid
    return grid.origin_lat, grid.origin_lon, None


def _worst(stats: CellStats, warned: str, risk: float | None) -> tuple[float | None, str | None]:
    """The share of passes failing the map's worst measure there, and its name (a tie goes to
    the measure the hub warns on). Why: a stretch where the link was degraded on every pass
    but never down looks fine by "down or short of uplink"; the layer shows it anyway, and
    says the warning does not count it."""
    if risk is None:  # below min_passes: says nothing, by any measure
        return None, None
    shares = {name: getattr(stats, counter) / stats.passes for name, counter in MEASURES.items()}
    name = max(shares, key=lambda n: (shares[n], n == warned))
    return shares[name], name


async def layer(lookahead: LookAhead, *, link: str, weather: str, light: str,
                near: tuple[float, float]) -> Layer:
    """Every cell the map holds for ``link``, judged as the look-ahead judges it: the
    condition's own rows where they have ``min_passes``, else all conditions pooled. What
    does not depend on the time asked (the cached part of an answer)."""
    linkmap, rule, grid = lookahead.linkmap, lookahead.rule, lookahead.linkmap.grid
    cells = sorted({(k[0], k[1]) for k in linkmap.rows if k[2] == link})
    nx, ny = grid.frame.to_xy(*near)
    half = grid.cell_m / 2.0

    def distance(cell: CellIndex) -> float:
        return math.hypot((cell[0] * grid.cell_m + half) - nx, (cell[1] * grid.cell_m + half) - ny)

    total = len(cells)
    cells = sorted(cells, key=lambda c: (distance(c), c))[:MAX_CELLS]
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    pooled_cells = weak = unwarned = 0
    warned = lookahead.settings.measure
    for n, cell in enumerate(cells):
        if n and n % CHUNK == 0:
            await asyncio.sleep(0)
        stats, pooled = rule.stats(cell, link, weather, light)
        if stats is None:  # not reached: every cell listed has a row for the link
            continue
        risk = rule.risk(stats)
        south, west = grid.frame.to_latlon(cell[0] * grid.cell_m, cell[1] * grid.cell_m)
        north, east = grid.frame.to_latlon((cell[0] + 1) * grid.cell_m,
                                           (cell[1] + 1) * grid.cell_m)
        lat, lon = grid.centre(cell)
        rtt95 = stats.rtt.percentiles(95)[0]
        ul05 = stats.ul.percentiles(5)[0]
        worst, worst_measure = _worst(stats, warned, risk)
        row = (cell[0], cell[1], _round(lat, 7), _round(lon, 7), _round(south, 7),
               _round(west, 7), _round(north, 7), _round(east, 7), stats.passes,
               stats.drive_count, _round(risk, 3), pooled, _round(stats.share_down(), 3),
               stats.outage_starts, _round(rtt95, 1), _round(ul05, 1), _round(worst, 3),
               worst_measure)
        for name, value in zip(COLUMNS, row, strict=True):
            cols[name].append(value)
        pooled_cells += pooled
        weak += risk is not None and risk >= rule.threshold
        unwarned += risk is not None and risk < rule.threshold and worst is not None \
            and worst >= rule.threshold
    counts = {"total_cells": total, "max_cells": MAX_CELLS, "truncated": total > len(cells),
              "pooled_cells": pooled_cells, "weak_cells": weak, "unwarned_cells": unwarned}
    return counts, msgspec.Raw(msgspec.json.encode(cols))


def answer(lookahead: LookAhead, *, held: Held, link: str, condition: tuple[str, str],
           current: tuple[str, str], cells: Layer) -> dict[str, Any]:
    """The layer with what it was judged by: the map's links and conditions, the one used
    and the hub's current one (which moves with the light), the grid and the rule."""
    rule, grid = lookahead.rule, lookahead.linkmap.grid
    settings = lookahead.settings
    links, conditions = held
    return {
        "link": link,
        "links": links,
        "conditions": [{"weather": w, "light": li} for w, li in conditions],
        "condition": {"weather": condition[0], "light": condition[1],
                      "current": condition == current, "in_map": condition in conditions},
        "current": {"weather": current[0], "light": current[1]},
        "grid": {"cell_m": grid.cell_m,
                 "origin": {"lat": grid.origin_lat, "lon": grid.origin_lon}},
        "rule": {"threshold": rule.threshold, "min_passes": rule.min_passes,
                 "measure": settings.measure, "horizon_s": settings.horizon_s,
                 # the console names what the layer is coloured by in these words
                 "measure_words": measure_words(rule.measure)},
        "fingerprint": lookahead.fingerprint,
        **cells[0],
        "cells": cells[1],
    }


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(viewer)])
    cache: OrderedDict[tuple[str, str, str, str], Layer] = OrderedDict()
    held: dict[str, Held] = {}
    building = asyncio.Lock()

    @router.get("/linkmap", response_class=Response, responses={
        **_REFUSALS, 200: {"content": {"application/json": {}},
                           "description": "the grid, the rule and the cells as columns"}})
    async def get_linkmap(link: Name = None,
                          weather: Annotated[str | None, Query(
                              min_length=1, max_length=32, pattern=r"^[a-z_-]+$")] = None,
                          light: Annotated[str | None, Query(
                              min_length=1, max_length=32, pattern=r"^[a-z_-]+$")] = None,
                          ) -> Response:
        """Per cell of the map, for one link (default: the map's first) under one condition
        (default: the hub's current one, as the look-ahead picks it now): passes, the share
        failing the warning's measure (null below min_passes), whether all conditions were
        pooled there, share of time down, outage starts, RTT p95 and usable uplink p5."""
        lookahead = runtime.hub.lookahead
        if lookahead is None:
            raise HTTPException(status_code=404, detail=(
                "this hub has no link map: set [linkmap] path in the hub config "
                "(l4mon demo --linkmap MAP), a map built by l4mon linkmap build"))
        linkmap = lookahead.linkmap
        if lookahead.fingerprint not in held:
            held.clear()
            held[lookahead.fingerprint] = (linkmap.links(), linkmap.conditions())
        links, known = held[lookahead.fingerprint]
        chosen = link if link is not None else (links[0] if links else "")
        if link is not None and link not in links:
            raise HTTPException(status_code=400, detail=(
                f"no link {link!r} in the map (it has: {', '.join(links) or 'none'})"))
        lat, lon, site = _centre_of_site(runtime, lookahead)
        current = lookahead.condition(lat, lon, runtime.clock.now(), site=site)
        condition = (weather or current[0], light or current[1])
        if condition != current and condition not in known:
            have = ", ".join(f"{w}/{li}" for w, li in known) or "none"
            raise HTTPException(status_code=400, detail=(
                f"no condition {condition[0]}/{condition[1]} in the map (it has: {have}; "
                f"the hub's current one is {current[0]}/{current[1]}: leave weather and "
                "light out for it)"))
        key = (chosen, *condition, lookahead.fingerprint)
        async with building:  # one build per key, however many consoles ask at once
            cells = cache.get(key)
            if cells is None:
                cells = await layer(lookahead, link=chosen, weather=condition[0],
                                    light=condition[1], near=(lat, lon))
                cache[key] = cells
                while len(cache) > CACHE_KEEP:
                    cache.popitem(last=False)
        body = answer(lookahead, held=(links, known), link=chosen, condition=condition,
                      current=current, cells=cells)
        return Response(msgspec.json.encode(body), media_type="application/json")

    return router
