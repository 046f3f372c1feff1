"""What can go wrong: faults injected into one vehicle, and cells that go dark for everyone.

A ``Fault`` is data (scenario files validate into it); ``effects_at`` turns the faults active
at one tick into what that tick must do differently, so the fleet's tick asks one question
per tick instead of one per fault and message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

import msgspec

from scenarios.sim.links import LINKS, LinkName

FaultKind = Literal[
    "link_down",
    "both_links_down",
    "telemetry_stall",
    "rtt_spike",
    "bandwidth_cap",
    "takeover_request",
    "clock_skew",
    "deaf_to_commands",
]

#: ``Fault.value`` when none is given: extra ms, cap in kbps, skew in seconds.
FAULT_DEFAULTS: Final[dict[str, float]] = {
    "rtt_spike": 250.0,
    "bandwidth_cap": 500.0,
    "clock_skew": 5.0,
}
_LINK_OPTIONAL: Final = frozenset({"rtt_spike", "bandwidth_cap"})


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """Something going wrong for one vehicle during ``[start, start + duration)`` (sim time).

    ``link`` is required for ``link_down``, optional for ``rtt_spike`` and ``bandwidth_cap``
    (``None``: both links) and not allowed otherwise. ``value`` is the size of ``rtt_spike``
    (ms added), ``bandwidth_cap`` (ul kbps) and ``clock_skew`` (seconds added to ``ts``);
    ``FAULT_DEFAULTS`` applies when it is ``None``. A msgspec Struct so that scenario files
    can be validated into it with ``msgspec.convert``.
    """

    kind: FaultKind
    vehicle: str
    start: float
    duration: float
    link: LinkName | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if not (math.isfinite(self.start) and math.isfinite(self.duration) and self.duration > 0):
            raise ValueError("a fault needs a finite start and a positive duration")
        if self.link is not None and self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, not {self.link!r}")
        if self.kind == "link_down" and self.link is None:
            raise ValueError("link_down needs link ('l5g' or 'lte')")
        if self.link is not None and self.kind != "link_down" and self.kind not in _LINK_OPTIONAL:
            raise ValueError(f"{self.kind} applies to the whole vehicle; do not give a link")
        if self.value is not None:
            if self.kind not in FAULT_DEFAULTS:
                raise ValueError(f"{self.kind} takes no value")
            if not math.isfinite(self.value) or (self.kind != "clock_skew" and self.value < 0):
                raise ValueError(f"bad value {self.value!r} for {self.kind}")

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def amount(self) -> float:
        """``value``, or its default for this kind (0 for kinds without one)."""
        return self.value if self.value is not None else FAULT_DEFAULTS.get(self.kind, 0.0)


@dataclass(slots=True)
class Effects:
    """What the faults active at one tick do to a vehicle; per-link lists follow ``LINKS``."""

    down: list[bool] = field(default_factory=lambda: [False, False])
    rtt_add: list[float] = field(default_factory=lambda: [0.0, 0.0])
    ul_cap: list[float] = field(default_factory=lambda: [math.inf, math.inf])
    stalled: bool = False
    cut: bool = False  # both links down: nothing can leave the vehicle
    mrm: bool = False
    skew: float = 0.0
    #: The vehicle's command receiver is dead while it drives and reports as usual: commands
    #: wait (as at the broker) and nothing answers them, so the hub's "not confirmed" shows.
    deaf: bool = False


#: The common case, no fault active; shared, so never mutate it.
NO_EFFECTS: Final = Effects()


def effects_at(faults: list[Fault], t: float) -> Effects:
    """The combined effect of the faults in ``faults`` that are active at sim time ``t``.

    Delays and skews add up; bandwidth caps take the lowest.
    """
    fx = Effects()
    for f in faults:
        if not f.start <= t < f.end:
            continue
        kind = f.kind
        if kind == "link_down":
            fx.down[LINKS.index(f.link or "l5g")] = True
        elif kind == "both_links_down":
            fx.down = [True, True]
            fx.cut = True
        elif kind == "telemetry_stall":
            fx.stalled = True
        elif kind == "takeover_request":
            fx.mrm = True
        elif kind == "clock_skew":
            fx.skew += f.amount
        elif kind == "deaf_to_commands":
            fx.deaf = True
        else:
            for k, name in enumerate(LINKS):
                if f.link is None or f.link == name:
                    if kind == "rtt_spike":
                        fx.rtt_add[k] += f.amount
                    else:
                        fx.ul_cap[k] = min(fx.ul_cap[k], f.amount)
    return fx


class CellOutages:
    """Cells that go dark during a window, and nothing else covers their area (the rural case).

    Kept apart from ``Fault`` because an outage belongs to the network, not to one vehicle:
    it hits whichever modems the cell serves, or would serve, while it lasts.
    """

    __slots__ = ("_windows",)

    def __init__(self) -> None:
        #: (cell id, start, end) in sim time.
        self._windows: list[tuple[str, float, float]] = []

    def __bool__(self) -> bool:
        """Whether any outage is still scheduled or under way (ended ones are forgotten)."""
        return bool(self._windows)

    def add(self, cell: str, start: float, duration: float) -> None:
        """``cell`` is dark during ``[start, start + duration)``."""
        if not (math.isfinite(start) and math.isfinite(duration) and duration > 0):
            raise ValueError("a cell outage needs a finite start and a positive duration")
        self._windows.append((cell, start, start + duration))

    def dark_at(self, t: float) -> set[str]:
        """The cells dark at sim time ``t``; forgets outages over by then (time only advances)."""
        self._windows = [w for w in self._windows if w[2] > t]
        return {cell for cell, start, end in self._windows if start <= t < end}
