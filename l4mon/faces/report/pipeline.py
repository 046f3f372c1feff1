"""Figures that are the hub's judgement — link states, alerts, handovers — from the real
pipeline: a ``results.json`` that ``l4mon replay`` wrote, or a replay the report runs itself.

Nothing here judges a link. When the report replays a log it adds two info rules to the hub's
own rule set (``report_link_degraded``, ``report_link_down``), whose alerts open and close
exactly when the hub's link state changes. Their raise and resolve times are the availability
timeline; they are then taken out of the alert figures. A results.json carries only totals per
link, so a report made from one has no timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec

from l4mon.alerts.rules import DEFAULT_RULES_PATH, Rule, parse_rules
from l4mon.config import HubConfig
from l4mon.context import replay_context
from l4mon.faces.report.inputs import LogInput, ReportError, ResultsInput
from scenarios import replay
from scenarios.scenario import results_document
from telemetry.drivelog import iter_wire_messages
from telemetry.ranges import merged
from telemetry.site import Site

REPORT_RULES = frozenset({"report_link_degraded", "report_link_down"})
_RULES = """

# -- added by l4mon report: the link state timeline, never shown to an operator ------------
[[rule]]
name = "report_link_degraded"
title = "(report) link degraded"
scope = "link"
when = "state == 'degraded'"
severity = "info"
for_s = 0.0
clear_for_s = 0.0
reopen_within_s = 0.0

[[rule]]
name = "report_link_down"
title = "(report) link down or stale"
scope = "link"
when = "state in ('down', 'stale')"
severity = "info"
for_s = 0.0
clear_for_s = 0.0
reopen_within_s = 0.0
"""


@dataclass
class StateRun:
    """One input's pipeline figures: a results document, and the state intervals if known."""

    label: str
    condition: str
    doc: dict[str, Any]
    origin: str  # "replayed by the report" or the results file
    #: (vehicle, link, state, start, end): the link's time in ``degraded`` / ``down``
    intervals: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    timeline: bool = False


def from_results(results: ResultsInput) -> StateRun:
    return StateRun(label=str(results.path), condition=results.condition, doc=results.doc,
                    origin=f"results file {results.path.name}")


def _rules(config: HubConfig | None, log: LogInput) -> list[Rule]:
    """The rules the log's replay runs: the recording's own (or the given config's), plus
    the report's two timeline rules."""
    if config is None and log.manifest.rules:
        text = log.manifest.rules
    else:
        source = Path(config.alerts.rules) if config is not None and config.alerts.rules \
            else DEFAULT_RULES_PATH
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as error:
            raise ReportError(f"cannot read rules {source}: {error.strerror}") from None
    return parse_rules(text + _RULES, source="the replay's rules")


def replay_log(log: LogInput, *, config: HubConfig | None, site: Site | None,
               start: float | None = None, end: float | None = None) -> StateRun:
    """Replay the log (within the period) through the live pipeline, as ``l4mon replay``:
    with the config, rules and site it was recorded with unless ``config`` / ``site`` are
    given.

    The log is streamed (period ``start <= recv_time < end`` applied by the reader, whole row
    groups skipped by their statistics), so a day of a fleet needs no more memory than an hour.
    """
    stream = iter_wire_messages(log.path, start=start, end=end)
    first = next(stream, None)
    if first is None:
        raise ReportError(f"{log.path}: no messages in the period")
    ctx = replay_context(log.manifest, config=config, site=site)
    outcome = replay.run(chain((first,), stream), config=ctx.config, site=ctx.site,
                         rules=_rules(config, log), not_measured=log.manifest.not_measured)
    info = {"kind": "log", "path": str(log.path), "site": log.manifest.site,
            "conditions": msgspec.to_builtins(log.manifest.conditions),
            "sources": [log.manifest.source], "not_measured": list(log.manifest.not_measured),
            "fields_not_measured": merged([log.manifest.fields_not_measured])}
    doc = results_document(input_info=info, outcome=outcome, expectations=[])
    doc["alerts"] = [a for a in doc["alerts"] if a["rule"] not in REPORT_RULES]
    intervals = [(a.vehicle or "", a.link or "",
                  "down" if a.rule == "report_link_down" else "degraded",
                  a.raised_at, a.resolved_at if a.resolved_at is not None else outcome.end)
                 for a in outcome.alerts if a.rule in REPORT_RULES]
    return StateRun(label=str(log.path), condition=log.condition, doc=doc,
                    origin="replayed by the report", intervals=intervals, timeline=True)
