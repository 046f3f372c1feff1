"""Which way a weak stretch failed its past passes: down, short of uplink, or impaired — and,
when impaired, by what (RTT, loss, signal).

Why: the operator acts on each differently. A link that goes down there needs the other link
or a stop; a stretch short of uplink needs a lower camera bitrate; one where RTT or loss
climbs leaves the picture late or broken, and needs a watchful eye. The ``weak_link_ahead``
card and its facts (``weak_ahead_cause``) say which, from the map's own pass counters and
figures, never from a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from telemetry.linkmap.cellstats import CellStats
from telemetry.linkstate import Limits, LinkThresholds

DOWN: Final = "down"
SHORT: Final = "short_of_uplink"
IMPAIRED: Final = "impaired"
#: Most serious first: a tie in passes goes to the one that costs the operator most.
SEVERITY: Final[tuple[str, ...]] = (DOWN, SHORT, IMPAIRED)
WORDS: Final[dict[str, str]] = {DOWN: "down", SHORT: "short of uplink", IMPAIRED: "impaired"}
#: Measure counter → the causes it can fail a pass by (telemetry/linkmap/ahead.py).
CAUSES_OF: Final[dict[str, tuple[str, ...]]] = {
    "passes_impaired": (DOWN, SHORT, IMPAIRED), "passes_unfit": (DOWN, SHORT),
    "passes_down": (DOWN,), "passes_ul_short": (SHORT,)}
DEFAULT_DEGRADED: Final = LinkThresholds().degraded


@dataclass(frozen=True, slots=True)
class Cause:
    """The main way the stretch failed (``kind``), on how many passes, the others after it,
    and for ``impaired`` the figures past the ``[links] degraded`` limits there."""

    kind: str
    passes: int
    others: tuple[tuple[str, int], ...] = ()
    by: tuple[str, ...] = ()
    rtt_p95_ms: float | None = None
    loss_ratio: float | None = None

    def words(self, of_passes: int) -> str:
        """"impaired by RTT p95 420 ms (limit 150) on 3 of 3 past passes; also down on 1"."""
        main = WORDS[self.kind]
        if self.kind == IMPAIRED:
            main += f" by {', '.join(self.by)}" if self.by else \
                " (degraded at times; the stretch's RTT, loss and signal within limits overall)"
        text = f"{main} on {self.passes} of {of_passes} past passes"
        if self.others:
            text += "; also " + ", ".join(f"{WORDS[k]} on {n}" for k, n in self.others)
        return text


def cause_of(stats: CellStats, measure: str, degraded: Limits = DEFAULT_DEGRADED) -> Cause:
    """The cause of the stretch's failures under ``measure`` (a pass counter). Passes short of
    uplink are those unfit but not down (a lower bound: a pass both down and short counts as
    down), or this link's own shortage under ``ul_short``."""
    short = stats.passes_ul_short if measure == "passes_ul_short" \
        else max(stats.passes_unfit - stats.passes_down, 0)
    counts = {DOWN: stats.passes_down, SHORT: short, IMPAIRED: stats.passes_degraded}
    kinds = CAUSES_OF.get(measure, SEVERITY)
    ranked = sorted(kinds, key=lambda k: (-counts[k], SEVERITY.index(k)))
    main, rest = ranked[0], ranked[1:]
    rtt = stats.rtt.percentiles(95)[0]
    loss = stats.probe_timeouts / stats.probes if stats.probes else None
    return Cause(main, counts[main], tuple((k, counts[k]) for k in rest if counts[k]),
                 past_limits(stats, rtt, loss, degraded), rtt, loss)


def past_limits(stats: CellStats, rtt_p95_ms: float | None, loss_ratio: float | None,
                degraded: Limits) -> tuple[str, ...]:
    """The stretch's figures past the degraded limits, in words: what impaired it."""
    out = []
    if rtt_p95_ms is not None and degraded.rtt_p95_ms is not None \
            and rtt_p95_ms >= degraded.rtt_p95_ms:
        out.append(f"RTT p95 {rtt_p95_ms:.0f} ms (limit {degraded.rtt_p95_ms:.0f})")
    if loss_ratio is not None and degraded.loss_ratio is not None \
            and loss_ratio >= degraded.loss_ratio:
        out.append(f"loss {loss_ratio:.1%} (limit {degraded.loss_ratio:.0%})")
    rsrp = stats.rsrp.percentiles(5)[0]
    if rsrp is not None and degraded.rsrp_dbm is not None and rsrp <= degraded.rsrp_dbm:
        out.append(f"RSRP p5 {rsrp:.0f} dBm (limit {degraded.rsrp_dbm:.0f})")
    sinr = stats.sinr.percentiles(5)[0]
    if sinr is not None and degraded.sinr_db is not None and sinr <= degraded.sinr_db:
        out.append(f"SINR p5 {sinr:.0f} dB (limit {degraded.sinr_db:.0f})")
    return tuple(out)
