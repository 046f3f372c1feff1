"""Condition models: each model moves the simulated fleet the way scenarios/conditions.py says."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from scenarios.conditions import (
    CLEAR_DAYLIGHT,
    CLEAR_NIGHT,
    MODELS,
    SNOW_DAYLIGHT,
    SNOW_NIGHT,
    ConditionModel,
    LinkConditions,
    model_for,
)
from scenarios.sim import SimFleet
from telemetry.site import DEMO_SITE_PATH, Site, load_site
from telemetry.topics import parse_topic
from telemetry.wire import LinkSample, VehicleState

T0 = 1_700_000_000.0
DURATION = 120.0  # two simulated minutes at 10 Hz
VEHICLES = 8  # spread evenly over the ~1.9 km loop, so two minutes sample all of it
SEED = 5
Messages = list[tuple[str, bytes]]


def fleet(site: Site, model: ConditionModel | None = None, seed: int = SEED) -> SimFleet:
    extra: dict[str, Any] = {} if model is None else {"conditions": model}
    return SimFleet(site=site, vehicles=VEHICLES, rsu_rate_hz=0.0, seed=seed, start=T0, **extra)


@dataclass
class Drive:
    """One run, decoded: link samples per link, and the vehicles' speeds."""

    links: dict[str, list[LinkSample]] = field(default_factory=lambda: defaultdict(list))
    speeds: list[float] = field(default_factory=list)

    def samples(self, link: str) -> list[LinkSample]:
        return self.links[link]

    def rsrp(self, link: str) -> list[float]:
        return [s.rsrp_dbm for s in self.samples(link) if s.rsrp_dbm is not None]

    def rtt(self, link: str) -> list[float]:
        return [s.rtt_ms for s in self.samples(link) if s.rtt_ms is not None]


def decode(messages: Messages) -> Drive:
    """Strict msgspec decoding into the wire Structs."""
    drive = Drive()
    for topic, payload in messages:
        route = parse_topic(topic)
        assert route is not None, topic
        if route.kind == "state":
            drive.speeds.append(msgspec.json.decode(payload, type=VehicleState).speed_mps)
        elif route.kind == "link":
            assert route.link is not None
            drive.links[route.link].append(msgspec.json.decode(payload, type=LinkSample))
    return drive


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(DEMO_SITE_PATH)


@pytest.fixture(scope="module")
def raw(site: Site) -> dict[str, Messages]:
    """Two minutes of each named model, same seed."""
    models = {m.name: m for m in MODELS.values()}
    return {name: fleet(site, m).advance(T0 + DURATION) for name, m in models.items()}


@pytest.fixture(scope="module")
def drives(raw: dict[str, Messages]) -> dict[str, Drive]:
    return {name: decode(messages) for name, messages in raw.items()}


def test_default_model_is_byte_identical(site: Site, raw: dict[str, Messages]) -> None:
    """No conditions argument, CLEAR_DAYLIGHT and model_for('daylight') give the same bytes."""
    assert model_for("daylight") is CLEAR_DAYLIGHT
    plain = fleet(site)
    assert plain.conditions is CLEAR_DAYLIGHT
    out = plain.advance(T0 + 60.0)
    assert out == raw["clear-daylight"][: len(out)]
    assert len(out) == pytest.approx(len(raw["clear-daylight"]) / 2, rel=0.01)


@pytest.mark.parametrize("model", [SNOW_DAYLIGHT, CLEAR_NIGHT, SNOW_NIGHT], ids=lambda m: m.name)
def test_deterministic_per_model(site: Site, raw: dict[str, Messages], model: ConditionModel
                                 ) -> None:
    """Same seed and model give the same bytes however the timeline is split, fades included;
    another seed differs."""
    until = T0 + 40.0
    again = fleet(site, model)
    out: Messages = []
    n = 1
    while again.now < until:
        out += again.advance(min(until, T0 + n * 0.37))
        n += 1
    assert out == [m for m in raw[model.name] if msgspec.json.decode(m[1])["ts"] <= until]
    other = fleet(site, model, seed=SEED + 1).advance(T0 + 1.0)
    assert other != raw[model.name][: len(other)]


def test_snow_lowers_rsrp_by_the_antenna_loss(site: Site, drives: dict[str, Drive]) -> None:
    """Median RSRP falls by extra_path_loss_db (±1.5 dB) on both links.

    Compared with the speed held at clear-day values: the vehicles then pass the same places
    with the same random draws, so the difference is the radio knobs alone (LTE's 1 dB would
    otherwise drown in where two minutes of slower driving happen to sample 6 dB shadowing).
    """
    held = msgspec.structs.replace(SNOW_DAYLIGHT, speed_factor=1.0)
    snow = decode(fleet(site, held).advance(T0 + DURATION))
    clear = drives["clear-daylight"]
    for link in ("l5g", "lte"):
        drop = statistics.median(clear.rsrp(link)) - statistics.median(snow.rsrp(link))
        expected = getattr(SNOW_DAYLIGHT, link).extra_path_loss_db
        assert drop == pytest.approx(expected, abs=1.5), link
        assert drop > 0.5 * expected, link


@pytest.mark.parametrize("model", [SNOW_DAYLIGHT, SNOW_NIGHT], ids=lambda m: m.name)
def test_named_snow_models_lower_local_5g_rsrp(drives: dict[str, Drive], model: ConditionModel
                                               ) -> None:
    """The named models as they drive: local 5G's 3 dB shows in the plain median too, give or
    take where slower driving happens to sample the shadowing (up to ~2 dB over seeds 0-19)."""
    base = drives["clear-daylight" if model is SNOW_DAYLIGHT else "clear-night"]
    drop = statistics.median(base.rsrp("l5g")) - statistics.median(drives[model.name].rsrp("l5g"))
    assert drop == pytest.approx(model.l5g.extra_path_loss_db, abs=2.5)
    assert drop > 1.5


def test_snow_deepens_the_weak_tail_and_the_rtt_tail(drives: dict[str, Drive]) -> None:
    """More weak samples and a longer RTT tail on local 5G.

    The demo site is well covered (clear-day RSRP never reaches -110 dBm there), so the weak
    tail is counted below -100 dBm. Snow's loss hits signal and interference alike, so SINR and
    probe losses barely move; the RTT tail grows through the weaker RSRP.
    """
    clear, snow = drives["clear-daylight"], drives["snow-daylight"]
    weak = [sum(r < -100.0 for r in d.rsrp("l5g")) for d in (clear, snow)]
    assert weak[1] >= 3 * max(weak[0], 10)
    assert quantile(snow.rtt("l5g"), 0.95) > quantile(clear.rtt("l5g"), 0.95)
    assert quantile(snow.rtt("l5g"), 0.90) > quantile(clear.rtt("l5g"), 0.90)


@pytest.mark.parametrize("model", [SNOW_DAYLIGHT, SNOW_NIGHT], ids=lambda m: m.name)
def test_snow_slows_the_shuttles(drives: dict[str, Drive], model: ConditionModel) -> None:
    """Mean speed falls by about speed_factor."""
    ratio = statistics.fmean(drives[model.name].speeds) / statistics.fmean(
        drives["clear-daylight"].speeds
    )
    assert ratio == pytest.approx(model.speed_factor, abs=0.04)


def test_night_means_quieter_public_cells(drives: dict[str, Drive]) -> None:
    """Late night: LTE RTT median ~rtt_factor of daylight, throughput and SINR up; the local 5G
    network and the driving do not follow the public demand curve, so they are unchanged."""
    day, night = drives["clear-daylight"], drives["clear-night"]
    ratio = statistics.median(night.rtt("lte")) / statistics.median(day.rtt("lte"))
    assert ratio == pytest.approx(CLEAR_NIGHT.lte.rtt_factor, abs=0.03)
    ul = [statistics.fmean(s.ul_kbps or 0.0 for s in d.samples("lte")) for d in (day, night)]
    assert 1.5 < ul[1] / ul[0] < 2.2
    sinr = [statistics.median(s.sinr_db or 0.0 for s in d.samples("lte")) for d in (day, night)]
    assert sinr[1] > sinr[0] + 1.0
    assert night.samples("l5g") == day.samples("l5g")
    assert night.speeds == day.speeds
    # Snow at night keeps night's quieter LTE.
    snow_night, snow_day = drives["snow-night"], drives["snow-daylight"]
    assert statistics.median(snow_night.rtt("lte")) < 0.95 * statistics.median(snow_day.rtt("lte"))


def test_fades_come_and_go(site: Site, drives: dict[str, Drive]) -> None:
    """Snow fades are extra loss for about rate x duration of the time (~12 %), each 0.5-1.5x
    the nominal depth, on top of the same draws as a fleet without them."""
    cond = SNOW_DAYLIGHT.l5g
    steady = msgspec.structs.replace(
        SNOW_DAYLIGHT,
        l5g=msgspec.structs.replace(cond, fade_rate_per_min=0.0),
        lte=msgspec.structs.replace(SNOW_DAYLIGHT.lte, fade_rate_per_min=0.0),
    )
    plain = decode(fleet(site, steady).advance(T0 + DURATION)).samples("l5g")
    faded = drives["snow-daylight"].samples("l5g")
    assert len(plain) == len(faded)
    dips = [
        a.rsrp_dbm - b.rsrp_dbm
        for a, b in zip(plain, faded, strict=True)
        if a.rsrp_dbm is not None and b.rsrp_dbm is not None and a.rsrp_dbm != b.rsrp_dbm
    ]
    share = cond.fade_rate_per_min / 60.0 * cond.fade_duration_s
    assert share / 3 < len(dips) / len(plain) < share * 3
    assert all(0.5 * cond.fade_depth_db - 0.11 <= d <= 1.5 * cond.fade_depth_db + 0.11
               for d in dips)


def test_model_names_tags_and_validation() -> None:
    """Named models carry their drive-log tags; unknown names and bad knobs are refused."""
    assert model_for("snow") is SNOW_DAYLIGHT and model_for("Snow-Daylight") is SNOW_DAYLIGHT
    assert model_for("night") is CLEAR_NIGHT and model_for("snow-night") is SNOW_NIGHT
    assert SNOW_DAYLIGHT.conditions.tags() == ["snow", "daylight", "snow"]
    assert CLEAR_NIGHT.conditions.light == "night" and CLEAR_NIGHT.conditions.road == "dry"
    with pytest.raises(ValueError, match="known: clear-daylight, clear-night, daylight, night, "
                                         "snow, snow-daylight, snow-night"):
        model_for("fog")
    with pytest.raises(ValueError, match="rtt_factor"):
        LinkConditions(rtt_factor=0.0)
    with pytest.raises(ValueError, match="fade_depth_db"):
        LinkConditions(fade_rate_per_min=1.0)
    with pytest.raises(ValueError, match="speed_factor"):
        msgspec.structs.replace(SNOW_DAYLIGHT, speed_factor=0.0)
    spec = {"name": "wet-snow", "conditions": {"weather": "snow", "light": "daylight"},
            "l5g": {"extra_path_loss_db": 5.0}, "speed_factor": 0.7}
    custom = msgspec.convert(spec, type=ConditionModel)
    assert custom.l5g.extra_path_loss_db == 5.0 and custom.lte == LinkConditions()
