"""Figures of the report's inputs outside their physical range, said where an operator reads.

A figure outside its physical range (a logger's "no value" marker, telemetry/ranges.py) is not
measured: null in the drive log, so no figure of the report counts it. Its count must still be
seen: an import's is in its manifest, a recording's comes from the hub as it replays (per link,
in the KPIs), a results file carries both. One note per input and field and reason.
"""

from __future__ import annotations

from typing import Any

from l4mon.faces.report.inputs import LogInput, ResultsInput
from l4mon.faces.report.pipeline import StateRun
from telemetry.ranges import describe, merged


def notes(logs: list[LogInput], results: list[ResultsInput], runs: list[StateRun]
          ) -> list[str]:
    """One line per input, field and reason: ``"{input}: RSRP: 12 values below the 3GPP
    reporting range of TS 38.133 (-156 … -31 dBm), not measured."``."""
    out = [f"{log.path}: {line}." for log in logs
           for line in describe(log.manifest.fields_not_measured)]
    given = {log.path.resolve() for log in logs}
    for r in results:  # its log's own count, unless that log is given (said above)
        if r.log_path is None or r.log_path not in given:
            counts = r.doc.get("input", {}).get("fields_not_measured") or {}
            out += [f"{r.path}: {line}." for line in describe(counts)]
    for run in runs:  # what the hub screened while replaying
        out += [f"{run.label}, as replayed: {line}." for line in describe(_kpis(run.doc))]
    return out


def _kpis(doc: dict[str, Any]) -> dict[str, dict[str, int]]:
    return merged(link.get("fields_not_measured") or {}
                  for vehicle in doc.get("kpis", {}).values()
                  for link in vehicle.get("links", {}).values())

