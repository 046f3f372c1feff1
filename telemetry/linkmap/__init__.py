"""The link map: per stretch of road (a grid cell), link and condition, what past drives saw.

``grid`` places positions in cells, ``sketch`` keeps small mergeable distributions,
``cellstats`` is one row's figures, ``model`` the map and its drives, ``store`` its Parquet
form, ``ahead`` the look-ahead rule. Built from drive logs by scenarios/linkmap_build.py
(which replays them through the hub for its link states); docs/linkmap.md.
"""

from telemetry.linkmap.ahead import WeakAhead, WeakSpot
from telemetry.linkmap.cellstats import CellStats
from telemetry.linkmap.grid import DEFAULT_CELL_M, Grid
from telemetry.linkmap.model import Drive, LinkMap, LinkMapError, drive_id
from telemetry.linkmap.store import read_manifest, read_map, write_map

__all__ = ["DEFAULT_CELL_M", "CellStats", "Drive", "Grid", "LinkMap", "LinkMapError",
           "WeakAhead", "WeakSpot", "drive_id", "read_manifest", "read_map", "write_map"]
