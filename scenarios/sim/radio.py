"""The radio model of one link: cells, path loss, shadowing, handover, SINR/RSRQ, throughput, RTT.

The figures are deliberately rough, order-of-magnitude calibrations, not a channel model:

* Local 5G RTT: median ~18-20 ms, p90 ~23-30 ms, rare spikes to ~300 ms, from the private n8
  runs of Zhang et al., *5G communication delay dataset for cloud-based vehicle planning and
  control*, Zenodo 10.5281/zenodo.17475688 (2024 drives); Japanese MIC local 5G trials report
  tens of Mbit/s uplink at sub-6, in line with the 20-60 Mbit/s used here.
* Public LTE: RSRQ around -8..-12 dB and SNR around 3..9 dB median while driving, from Raca et
  al., *Beyond Throughput, The Next Generation: A 5G Dataset with Channel and Context Metrics*,
  ACM MMSys 2020 (LTE rows); RTT 40-60 ms is the usual crowd-sourced figure for 4G in Japan.
* Path loss: log-distance with exponent 3-3.5; shadow fading 4-6 dB, decorrelating over tens of
  metres (Gudmundson's model; magnitudes in line with 3GPP TR 38.901 UMi/RMa).
* Handover: a few tens of ms of interruption (3GPP's LTE target is ~30-60 ms in practice), seen
  at 10 Hz as one lost probe and a slow one right after.

Weather and time of day come from a ``ConditionModel`` (scenarios/conditions.py, where their
sources are): antenna loss, extra shadowing, snow fades, cell load and RTT per link. The
default, ``CLEAR_DAYLIGHT``, is this calibration unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from scenarios.conditions import LinkConditions
from scenarios.sim.links import LinkName
from telemetry.ranges import RTT_MS
from telemetry.site import LocalFrame, Site
from telemetry.wire import LinkSample


@dataclass(frozen=True, slots=True)
class RadioCalibration:
    """One link's radio behaviour; see the module docstring for where the numbers come from."""

    rat: Literal["nr", "lte"]
    ref_rsrp_dbm: float  # mean RSRP at ref_m from a cell
    ref_m: float
    exponent: float  # log-distance path-loss exponent
    shadow_db: float  # shadow-fading standard deviation
    decorr_m: float  # shadow-fading decorrelation distance
    noise_dbm: float  # thermal noise + noise figure per resource element
    background_dbm: float  # interference from cells the site file does not list
    load: float  # share of resources busy in neighbour cells (interference, RSRQ)
    hysteresis_db: float  # A3-style handover offset ...
    ttt_s: float  # ... that must hold this long (time-to-trigger)
    rtt_median_ms: float
    rtt_sigma: float  # log-normal spread of RTT
    rtt_good_rsrp: float  # below this RSRP, RTT grows (retransmissions, lower MCS)
    spike_prob: float  # per-sample chance of a scheduling / retransmission spike
    ul_budget_db: float  # uplink SNR ~ RSRP + this: the UE's power limit at the cell edge
    full_snr_db: float  # SNR at which throughput reaches its maximum
    ul_max_kbps: float
    dl_max_kbps: float
    # Derived once, used per sample.
    floor_mw: float = field(init=False)  # noise + background interference, mW per RE
    full: float = field(init=False)  # spectral efficiency at full_snr_db
    rsrq_top_db: float = field(init=False)  # RSRQ at high SINR for this load

    def __post_init__(self) -> None:
        floor = 10.0 ** (self.noise_dbm / 10.0) + 10.0 ** (self.background_dbm / 10.0)
        object.__setattr__(self, "floor_mw", floor)
        object.__setattr__(self, "full", math.log2(1.0 + 10.0 ** (self.full_snr_db / 10.0)))
        object.__setattr__(self, "rsrq_top_db", -10.0 * math.log10(12.0 * self.load))


def _dbm_per_re(bandwidth_hz: float, noise_figure_db: float) -> float:
    return -174.0 + 10.0 * math.log10(bandwidth_hz) + noise_figure_db


CALIBRATIONS: Final[dict[LinkName, RadioCalibration]] = {
    # Small cells, 100 MHz TDD on n79, few users: high SINR near the pole, UL-capable TDD pattern.
    "l5g": RadioCalibration(
        rat="nr",
        ref_rsrp_dbm=-72.0,
        ref_m=100.0,
        exponent=3.0,
        shadow_db=4.0,
        decorr_m=20.0,
        noise_dbm=_dbm_per_re(30e3, 7.0),
        background_dbm=-118.0,
        load=0.4,
        hysteresis_db=3.0,
        ttt_s=0.32,
        rtt_median_ms=18.0,
        rtt_sigma=0.15,
        rtt_good_rsrp=-95.0,
        spike_prob=0.008,
        ul_budget_db=113.0,
        full_snr_db=25.0,
        ul_max_kbps=60_000.0,
        dl_max_kbps=120_000.0,
    ),
    # Rural macro cells 1-2 km away, shared with the public: lower SINR, longer core path.
    "lte": RadioCalibration(
        rat="lte",
        ref_rsrp_dbm=-84.0,
        ref_m=1000.0,
        exponent=3.5,
        shadow_db=6.0,
        decorr_m=50.0,
        noise_dbm=_dbm_per_re(15e3, 7.0),
        background_dbm=-106.0,
        load=0.6,
        hysteresis_db=3.0,
        ttt_s=0.48,
        rtt_median_ms=48.0,
        rtt_sigma=0.25,
        rtt_good_rsrp=-105.0,
        spike_prob=0.01,
        ul_budget_db=117.0,
        full_snr_db=20.0,
        ul_max_kbps=20_000.0,
        dl_max_kbps=40_000.0,
    ),
}

_SINR_CEILING: Final = 10.0 ** (-33.0 / 10.0)  # impairments cap SINR near 33 dB
_MAX_LOAD: Final = 0.95  # a condition's load_factor never fills the neighbours completely


def under_conditions(radio: RadioCalibration, cond: LinkConditions) -> RadioCalibration:
    """``radio`` as changed by ``cond`` (the same object when ``cond`` changes nothing).

    Antenna loss lowers every received signal, background interference included, and with
    RSRP the uplink's power limit; load scales neighbour and background interference, and the
    shuttle's share of the cell, ``1 - load``, scales its throughput.
    """
    if cond == LinkConditions():
        return radio
    load = min(_MAX_LOAD, radio.load * cond.load_factor)
    share = (1.0 - load) / (1.0 - radio.load)
    return dataclasses.replace(
        radio,
        ref_rsrp_dbm=radio.ref_rsrp_dbm - cond.extra_path_loss_db,
        background_dbm=radio.background_dbm - cond.extra_path_loss_db
        + 10.0 * math.log10(load / radio.load),
        shadow_db=math.hypot(radio.shadow_db, cond.extra_shadow_db),
        load=load,
        rtt_median_ms=radio.rtt_median_ms * cond.rtt_factor,
        ul_max_kbps=radio.ul_max_kbps * share,
        dl_max_kbps=radio.dl_max_kbps * share,
    )


class Cell(NamedTuple):
    """A cell a modem can be served by, in site metres."""

    id: str
    x: float
    y: float
    co_channel: tuple[int, ...]  # indices of the cells on the same band: its interferers


def cells_for(link: LinkName, site: Site, frame: LocalFrame) -> list[Cell]:
    """The site's cells that ``link``'s modem can use: its RAT, its operator, with a position.

    Cells without a position cannot be simulated and are skipped; the local 5G modem never
    uses a public cell and the public LTE modem never a local 5G one.
    """
    rat = CALIBRATIONS[link].rat
    usable = [
        c
        for c in site.cells
        if c.rat == rat
        and c.lat is not None
        and c.lon is not None
        and c.operator != ("public" if link == "l5g" else "local5g")
    ]
    cells = []
    for i, c in enumerate(usable):
        assert c.lat is not None and c.lon is not None
        x, y = frame.to_xy(c.lat, c.lon)
        co = tuple(j for j, o in enumerate(usable) if j != i and o.band == c.band)
        cells.append(Cell(c.id, x, y, co))
    return cells


class Modem:
    """One vehicle's modem on one link: serving cell (index into the cells, -1 detached),
    handover timing, shadow fading, condition fades, and its message stream."""

    __slots__ = (
        "after_ho", "fade_db", "fade_end", "fade_next", "fade_rng", "name", "pending", "seq",
        "serving", "shadow", "topic", "ttt",
    )  # fmt: skip

    def __init__(self, name: LinkName, topic: str) -> None:
        self.name = name
        self.topic = topic
        self.seq = 0
        self.serving = -1
        self.pending = -1  # the better neighbour being timed for handover
        self.ttt = 0  # ticks the pending neighbour has been better
        self.shadow = 0.0
        self.after_ho = 0  # ticks left in the handover interruption
        # Condition fades (only with a ConditionModel that has them): their own RNG, so the
        # rest of the sample is the same draw with or without them.
        self.fade_rng: random.Random | None = None
        self.fade_next = math.inf  # start of the next fade, sim time
        self.fade_end = -math.inf  # end of the current (or last) fade
        self.fade_db = 0.0

    def detach(self) -> None:
        """The modem lost service: it re-attaches from scratch, no handover under way."""
        self.serving = -1
        self.pending = -1
        self.after_ho = 0


class RadioNetwork:
    """One link's cells under one condition model, as every vehicle's modem on it sees them.

    ``tick_s`` is the vehicles' sample period: handover's time-to-trigger counts ticks.
    """

    __slots__ = ("calibration", "cells", "conditions", "name", "tick_s")

    def __init__(self, name: LinkName, *, site: Site, frame: LocalFrame,
                 conditions: LinkConditions, tick_s: float) -> None:
        self.name = name
        self.conditions = conditions
        self.calibration = under_conditions(CALIBRATIONS[name], conditions)
        self.cells = cells_for(name, site, frame)
        self.tick_s = tick_s

    def arm_fades(self, modem: Modem, *, rng_seed: str, start: float) -> None:
        """Give ``modem`` condition fades, the first one after ``start``, from an RNG of their
        own seeded with ``rng_seed`` (nothing when the conditions have no fades)."""
        cond = self.conditions
        if cond.fades:
            rng = modem.fade_rng = random.Random(rng_seed)
            modem.fade_next = start + rng.expovariate(cond.fade_rate_per_min / 60.0)

    def fade_at(self, modem: Modem, t: float) -> float:
        """The condition fade on ``modem`` at sim time ``t`` (dB of extra antenna loss).

        Fades start as a Poisson process in sim time, each with its own depth and duration;
        the schedule depends only on the seed and ``t``, not on which ticks asked.
        """
        rng = modem.fade_rng
        assert rng is not None
        cond = self.conditions
        while t >= modem.fade_next:
            begin = modem.fade_next
            modem.fade_end = begin + cond.fade_duration_s * rng.uniform(0.5, 1.5)
            modem.fade_db = cond.fade_depth_db * rng.uniform(0.5, 1.5)
            modem.fade_next = begin + rng.expovariate(cond.fade_rate_per_min / 60.0)
        return modem.fade_db if t < modem.fade_end else 0.0

    def cell_in_use(self, modem: Modem, x: float, y: float) -> str | None:
        """The cell ``modem`` is served by, or would attach to at ``(x, y)`` (the nearest);
        ``None`` when this link has no cells."""
        cells = self.cells
        if not cells:
            return None
        if modem.serving >= 0:
            return cells[modem.serving].id
        return min(cells, key=lambda c: math.hypot(x - c.x, y - c.y)).id

    def measure(
        self,
        modem: Modem,
        rng: random.Random,
        *,
        x: float,
        y: float,
        moved: float,
        ts: float,
        rtt_add: float,
        ul_cap: float,
        fade_db: float = 0.0,
    ) -> LinkSample:
        """One modem sample: serving cell with A3-style hysteresis, then radio and probe.

        Draws from ``rng`` (the vehicle's) in a fixed order. ``fade_db`` is extra loss at the
        vehicle's antenna: every cell and the background interference are that much weaker;
        thermal noise is not.
        """
        radio = self.calibration
        cells = self.cells
        if not cells:
            return LinkSample(ts=ts, seq=modem.seq, rat="none")
        gauss, uniform01 = rng.gauss, rng.random
        ref, ref_m, ten_n = radio.ref_rsrp_dbm, radio.ref_m, 10.0 * radio.exponent
        floor = radio.floor_mw
        if fade_db:
            ref -= fade_db
            floor = 10.0 ** (radio.noise_dbm / 10.0) + 10.0 ** (
                (radio.background_dbm - fade_db) / 10.0
            )
        log10, hypot = math.log10, math.hypot
        mean = [
            ref - ten_n * log10(max(hypot(x - cx, y - cy), 10.0) / ref_m) for _, cx, cy, _ in cells
        ]
        best = mean.index(max(mean))
        serving = modem.serving
        handover = False
        if serving < 0:
            serving = modem.serving = best
            modem.shadow = gauss(0.0, radio.shadow_db)
        elif best != serving and mean[best] > mean[serving] + radio.hysteresis_db:
            modem.ttt = modem.ttt + 1 if modem.pending == best else 1
            modem.pending = best
            if modem.ttt * self.tick_s >= radio.ttt_s:
                serving = modem.serving = best
                modem.pending, modem.ttt = -1, 0
                modem.shadow = gauss(0.0, radio.shadow_db)
                modem.after_ho = 2
                handover = True
        else:
            modem.pending, modem.ttt = -1, 0
        # Shadowing as a first-order process over distance driven (Gudmundson).
        if moved > 0.0:
            rho = math.exp(-moved / radio.decorr_m)
            modem.shadow = rho * modem.shadow + math.sqrt(1.0 - rho * rho) * gauss(
                0.0, radio.shadow_db
            )
        rsrp = mean[serving] + modem.shadow + gauss(0.0, 1.0)
        rsrp = -140.0 if rsrp < -140.0 else -44.0 if rsrp > -44.0 else rsrp
        signal = 10.0 ** (rsrp / 10.0)
        # Transmitter and receiver impairments (EVM) cap SINR in the low 30s dB however strong
        # the signal: a signal-proportional term joins noise and interference.
        interference = floor + signal * _SINR_CEILING
        for j in cells[serving].co_channel:
            interference += radio.load * 10.0 ** (mean[j] / 10.0)
        sinr = 10.0 * log10(signal / interference) + gauss(0.0, 1.5)
        sinr = -20.0 if sinr < -20.0 else 40.0 if sinr > 40.0 else sinr
        sinr_lin = 10.0 ** (sinr / 10.0)
        # RSRQ = RSRP / (RSSI per resource block): -10.8 dB at full load and high SINR,
        # higher when lightly loaded, lower as interference grows.
        # The neighbours' load fluctuates from sample to sample, so RSRQ jitters too.
        rsrq = radio.rsrq_top_db + 10.0 * log10(sinr_lin / (1.0 + sinr_lin)) + gauss(0.0, 0.7)
        rsrq = -20.0 if rsrq < -20.0 else -3.0 if rsrq > -3.0 else rsrq

        # Shannon-shaped throughput, saturating at full_snr_db; uplink is also power-limited.
        ul_snr = min(sinr, rsrp + radio.ul_budget_db)
        ul = radio.ul_max_kbps * min(1.0, math.log2(1.0 + 10.0 ** (ul_snr / 10.0)) / radio.full)
        dl = radio.dl_max_kbps * min(1.0, math.log2(1.0 + sinr_lin) / radio.full)
        ul *= 0.8 + 0.25 * uniform01()
        dl *= 0.8 + 0.25 * uniform01()

        rtt: float | None = radio.rtt_median_ms * math.exp(radio.rtt_sigma * gauss(0.0, 1.0))
        if rsrp < radio.rtt_good_rsrp:
            rtt *= 1.0 + 0.06 * (radio.rtt_good_rsrp - rsrp)
        if uniform01() < radio.spike_prob:
            rtt += 60.0 + 240.0 * uniform01()
        lost = uniform01() < (0.002 if sinr > 0.0 else 0.002 - 0.02 * sinr)
        if modem.after_ho:
            modem.after_ho -= 1
            if handover:
                lost = True  # the probe falls into the interruption
                ul *= 0.3
                dl *= 0.3
            else:
                rtt += 30.0 + 90.0 * uniform01()  # answered late, after the path switch
        rtt = None if lost else round(min(RTT_MS.high, rtt + rtt_add), 1)
        return LinkSample(
            ts=ts,
            seq=modem.seq,
            rat=radio.rat,
            cell_id=cells[serving].id,
            rsrp_dbm=round(rsrp, 1),
            rsrq_db=round(rsrq, 1),
            sinr_db=round(sinr, 1),
            rtt_ms=rtt,
            ul_kbps=round(min(ul, ul_cap), 1),
            dl_kbps=round(dl, 1),
        )
