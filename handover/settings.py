"""The ``[handover]`` section of the hub config: detection on or off, and its parameters.

Validated when the config loads (by building a tracker with them), so a bad window is a config
error at start-up, not an exception on the ingest path.
"""

from __future__ import annotations

import msgspec

from handover.detect import HandoverTracker


class HandoverSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Defaults and reasons: docs/handover.md. Replay always detects, whatever ``enabled``."""

    #: Detect handovers on every link live. Costs ~3 % of the ingest benchmark's CPU per
    #: message (docs/benchmarks.md); off only to squeeze the last messages out of a hub.
    enabled: bool = True
    rtt_k: float = 3.0
    baseline_n: int = 20
    rlf_threshold_s: float = 1.0
    ping_pong_window_s: float = 1.0
    dwell_horizon_s: float = 5.0
    max_per_window: int = 3
    frequency_window_s: float = 10.0
    #: Ping-pongs at one intersection are counted over this window for the hotspot rule.
    hotspot_window_s: float = 600.0

    def __post_init__(self) -> None:
        self.tracker()  # raises ValueError on a bad combination, naming it
        if self.hotspot_window_s <= 0:
            raise ValueError("handover: hotspot_window_s must be > 0")

    def tracker(self) -> HandoverTracker:
        return HandoverTracker(
            rtt_k=self.rtt_k, baseline_n=self.baseline_n, rlf_threshold_s=self.rlf_threshold_s,
            ping_pong_window_s=self.ping_pong_window_s, dwell_horizon_s=self.dwell_horizon_s,
            max_per_window=self.max_per_window, frequency_window_s=self.frequency_window_s)
