"""Judging a link ``ok`` / ``degraded`` / ``down``, with ``stale`` for "we have heard nothing".

Thresholds come from config. Each has an *enter* and a *clear* value (the clear one stricter),
and a worse verdict must hold for ``degrade_after_s`` (``down_after_s`` for down) while a better
one must hold for ``recover_after_s``: a link on the edge of a threshold does not flap.
Staleness is not judged with hysteresis: silence is a fact, and it is reported at once.
"""

from __future__ import annotations

from typing import Final

import msgspec

OK: Final = "ok"
DEGRADED: Final = "degraded"
DOWN: Final = "down"
STALE: Final = "stale"
UNKNOWN: Final = "unknown"
STATES: Final = (UNKNOWN, OK, DEGRADED, DOWN, STALE)
_LEVEL: Final = {OK: 0, DEGRADED: 1, DOWN: 2}
_BY_LEVEL: Final = (OK, DEGRADED, DOWN)


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Enter values for one verdict; ``None`` turns a criterion off."""

    rtt_p95_ms: float | None = None
    loss_ratio: float | None = None
    rsrp_dbm: float | None = None
    sinr_db: float | None = None


class LinkThresholds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[links]`` table of the hub config."""

    window_s: float = 10.0
    stale_after_s: float = 1.0
    #: Silence a stream may keep before its pace is known (learned from a few intervals, or
    #: declared by the sender): three intervals of the slowest sender l4mon expects, 0.3 Hz.
    #: A link or vehicle newly heard is never stale sooner for want of a learned pace.
    unlearned_stale_after_s: float = 10.0
    degrade_after_s: float = 1.0
    down_after_s: float = 0.3
    recover_after_s: float = 5.0
    #: Probes unanswered (at least two in a row) for this long mean the link carries nothing
    #: useful: down. Samples without a probe are no evidence either way.
    probe_silence_s: float = 2.0
    degraded: Limits = Limits(rtt_p95_ms=150.0, loss_ratio=0.02, rsrp_dbm=-110.0, sinr_db=0.0)
    degraded_clear: Limits = Limits(rtt_p95_ms=120.0, loss_ratio=0.01, rsrp_dbm=-106.0,
                                    sinr_db=3.0)
    down: Limits = Limits(rtt_p95_ms=1_000.0, loss_ratio=0.3, rsrp_dbm=-125.0)
    down_clear: Limits = Limits(rtt_p95_ms=600.0, loss_ratio=0.15, rsrp_dbm=-120.0)

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.stale_after_s <= 0 or self.probe_silence_s <= 0:
            raise ValueError("links: window_s, stale_after_s and probe_silence_s must be > 0")
        if self.unlearned_stale_after_s < self.stale_after_s:
            raise ValueError("links: unlearned_stale_after_s must be >= stale_after_s")
        if min(self.degrade_after_s, self.down_after_s, self.recover_after_s) < 0:
            raise ValueError("links: hold times must be >= 0")
        for enter, clear, name in ((self.degraded, self.degraded_clear, "degraded"),
                                   (self.down, self.down_clear, "down")):
            _check_band(enter, clear, name)


def _check_band(enter: Limits, clear: Limits, name: str) -> None:
    """A clear value on the wrong side of its enter value would make the state oscillate."""
    for field in ("rtt_p95_ms", "loss_ratio"):
        e, c = getattr(enter, field), getattr(clear, field)
        if e is not None and c is not None and c > e:
            raise ValueError(f"links.{name}_clear.{field} ({c}) must be <= {name}.{field} ({e})")
    for field in ("rsrp_dbm", "sinr_db"):
        e, c = getattr(enter, field), getattr(clear, field)
        if e is not None and c is not None and c < e:
            raise ValueError(f"links.{name}_clear.{field} ({c}) must be >= {name}.{field} ({e})")


class Figures(msgspec.Struct, frozen=True):
    """What the verdict is based on: the judging window's figures and the latest signal."""

    rtt_p95_ms: float | None
    loss_ratio: float
    rsrp_dbm: float | None
    sinr_db: float | None
    #: Time since the first of the probes unanswered in a row since the last answer; None
    #: when the last probe was answered, too few went unanswered, or none was sent.
    probe_silence_s: float | None
    in_service: bool  # the modem reports a serving cell


def breaches(fig: Figures, limits: Limits) -> list[str]:
    """Names of the criteria that ``fig`` is on the bad side of."""
    out = []
    if limits.rtt_p95_ms is not None and fig.rtt_p95_ms is not None \
            and fig.rtt_p95_ms > limits.rtt_p95_ms:
        out.append("rtt_p95")
    if limits.loss_ratio is not None and fig.loss_ratio > limits.loss_ratio:
        out.append("loss")
    if limits.rsrp_dbm is not None and fig.rsrp_dbm is not None and fig.rsrp_dbm < limits.rsrp_dbm:
        out.append("rsrp")
    if limits.sinr_db is not None and fig.sinr_db is not None and fig.sinr_db < limits.sinr_db:
        out.append("sinr")
    return out


def judge(fig: Figures, thr: LinkThresholds, current: str) -> tuple[str, list[str]]:
    """The verdict ``fig`` supports, given the state we are in (which decides enter vs clear)."""
    no_probe = fig.probe_silence_s is not None and fig.probe_silence_s > thr.probe_silence_s
    if not fig.in_service:
        return DOWN, ["no_service"]
    down_limits = thr.down_clear if current == DOWN else thr.down
    why = breaches(fig, down_limits)
    if no_probe:
        why.append("no_probe_answer")
    if why:
        return DOWN, why
    deg_limits = thr.degraded_clear if current in (DEGRADED, DOWN) else thr.degraded
    why = breaches(fig, deg_limits)
    if why:
        return DEGRADED, why
    return OK, []


class LinkHealth:
    """The hysteresis memory of one link's verdict. Time always comes from the caller."""

    __slots__ = ("_pending", "_pending_reasons", "_pending_since", "changes", "reasons", "since",
                 "state")

    def __init__(self) -> None:
        self.state = UNKNOWN
        self.since: float | None = None
        self.reasons: list[str] = []
        self._pending: str | None = None
        self._pending_since = 0.0
        self._pending_reasons: list[str] = []
        self.changes = 0

    def _set(self, state: str, now: float, reasons: list[str]) -> bool:
        changed = state != self.state
        if changed:
            self.state = state
            self.since = now
            self.changes += 1
        self.reasons = reasons
        self._pending = None
        return changed

    def mark_stale(self, now: float) -> bool:
        return self._set(STALE, now, ["no_sample"])

    def update(self, verdict: str, reasons: list[str], now: float, thr: LinkThresholds, *,
               immediate: bool = False) -> bool:
        """Move toward ``verdict`` once it has held long enough; True when the state changed."""
        current = self.state
        if current in (UNKNOWN, STALE) or verdict == current or immediate:
            # First data, or data again after silence: nothing to damp against.
            return self._set(verdict, now, reasons)
        if self._pending != verdict:
            self._pending = verdict
            self._pending_since = now
        self._pending_reasons = reasons
        return self.settle(now, thr)

    def settle(self, now: float, thr: LinkThresholds) -> bool:
        """Apply the pending verdict if it has now held long enough (no new judgement needed)."""
        pending = self._pending
        if pending is None:
            return False
        if _LEVEL[pending] > _LEVEL.get(self.state, -1):
            hold = thr.down_after_s if pending == DOWN else thr.degrade_after_s
        else:
            hold = thr.recover_after_s
        # The epsilon keeps float rounding of epoch times from delaying a change by a tick.
        if now - self._pending_since >= hold - 1e-6:
            return self._set(pending, now, self._pending_reasons)
        return False


def worst(states: list[str]) -> str:
    """The worst usable-ness among link states; stale counts as down for the vehicle."""
    level = -1
    for s in states:
        level = max(level, 2 if s == STALE else _LEVEL.get(s, -1))
    return _BY_LEVEL[level] if level >= 0 else UNKNOWN
