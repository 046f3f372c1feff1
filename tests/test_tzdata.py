"""Named time zones work on a machine without the system's zone files, through ``tzdata``.

G-NetTrack exports are in the phone's local time and a service timetable is local time, so
the importer and the hub ask ``zoneinfo`` for IANA zones; slim containers and Windows have no
/usr/share/zoneinfo, which is why ``tzdata`` is a runtime dependency (pyproject.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import zoneinfo
from datetime import datetime
from scenarios.importers.gnettrack import zone
assert zoneinfo.TZPATH == (), zoneinfo.TZPATH  # no system zone files: tzdata alone answers
print(zone("Asia/Tokyo").utcoffset(datetime(2026, 1, 1)), zone("Europe/Dublin").tzname(
    datetime(2026, 7, 1)))
"""


def test_zones_resolve_without_system_zone_files() -> None:
    env = {**os.environ, "PYTHONTZPATH": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=60, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["9:00:00", "IST"]
