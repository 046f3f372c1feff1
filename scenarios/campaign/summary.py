"""What a campaign says of its inputs: each replay's line, and one summary over all of them.

The summary is made from the inputs' results in the order the inputs were given, never in
the order workers finished, and carries no wall time: the same campaign gives the same
``campaign.json`` bytes on one core, on many, or on a cluster.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scenarios.campaign.inputs import Entry

SUMMARY_FORMAT: Final = "l4mon-campaign-summary"
SUMMARY_VERSION: Final = 1
RESULTS_NAME: Final = "results.json"
SUMMARY_NAME: Final = "campaign.json"


def outcome_lines(doc: dict[str, Any], target: str) -> list[str]:
    """The lines ``l4mon replay`` prints for one replay: its verdict and counts, then each
    failed expectation."""
    failed = [e for e in doc["expectations"] if not e["passed"]]
    sessions = len(doc["sessions"])
    grouped = sum(1 for a in doc["alerts"] if a["incident"] is not None)
    count = len(doc["incidents"])
    incidents = f" ({grouped} in {count} incident{'s' if count > 1 else ''})" if grouped else ""
    head = (f"{doc['input'].get('name') or target}: {doc['verdict'].upper()} - "
            f"{doc['span']['messages']} messages over {doc['span']['duration_s']:.1f} s"
            f"{f' in {sessions} sessions' if sessions > 1 else ''}, "
            f"{len(doc['alerts'])} alerts"
            f"{incidents}"
            f", {len(doc['expectations']) - len(failed)}/"
            f"{len(doc['expectations'])} expectations held")
    return [head] + [f"  FAILED {e['id']}: {e['detail']}" for e in failed]


def digest(entry: Entry, doc: dict[str, Any]) -> dict[str, Any]:
    """One input's line of the summary: enough to find the bad ones among thousands."""
    held = sum(1 for e in doc["expectations"] if e["passed"])
    return {
        "name": entry.name, "path": entry.path, "results": f"{entry.name}/{RESULTS_NAME}",
        "verdict": doc["verdict"], "messages": doc["span"]["messages"],
        "duration_s": doc["span"]["duration_s"], "sessions": len(doc["sessions"]),
        "vehicles": len(doc["kpis"]),
        "vehicle_hours": round(sum(k["in_service_s"] for k in doc["kpis"].values()) / 3600, 6),
        "alerts": len(doc["alerts"]),
        "alerts_by_severity": dict(sorted(Counter(a["severity"] for a in doc["alerts"])
                                          .items())),
        "incidents": len(doc["incidents"]), "handovers": len(doc["handovers"]),
        "expectations": {"held": held, "total": len(doc["expectations"])},
        "quarantined": sum(doc["quarantine"].values()),
    }


def campaign_document(digests: list[dict[str, Any]], refused: list[dict[str, str]]
                      ) -> dict[str, Any]:
    """The summary over every input (``digests`` in the inputs' order): totals, verdict, and
    the inputs that could not be replayed with their reasons."""
    verdicts = Counter(d["verdict"] for d in digests)
    severities: Counter[str] = Counter()
    for d in digests:
        severities.update(d["alerts_by_severity"])
    verdict = "fail" if verdicts["fail"] else "refused" if refused else \
        "pass" if verdicts["pass"] else "no_expectations"
    return {
        "format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, "verdict": verdict,
        "totals": {
            "inputs": len(digests) + len(refused), "replayed": len(digests),
            "refused": len(refused), "verdicts": dict(sorted(verdicts.items())),
            "messages": sum(d["messages"] for d in digests),
            "duration_s": round(sum(d["duration_s"] for d in digests), 3),
            "vehicle_hours": round(sum(d["vehicle_hours"] for d in digests), 6),
            "alerts": sum(d["alerts"] for d in digests),
            "alerts_by_severity": dict(sorted(severities.items())),
            "incidents": sum(d["incidents"] for d in digests),
            "handovers": sum(d["handovers"] for d in digests),
            "quarantined": sum(d["quarantined"] for d in digests),
        },
        "inputs": digests,
        "refused": refused,
    }
