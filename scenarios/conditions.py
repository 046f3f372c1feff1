"""Condition models for the simulated fleet: snow or clear weather, daylight or late night.

The national verification programme asks for evidence "under snow and daylight", so the
generator must be able to produce a plausible snowy day next to a clear one. A
``ConditionModel`` is a handful of knobs that ``SimFleet(conditions=...)`` applies on top of
its own radio model (see scenarios/sim/radio.py), plus the ``Conditions`` tag that goes into a
drive log's manifest.

These are coarse, order-of-magnitude scenario models, not a channel model. Where a number
comes from a measurement it is cited below; where it does not, it is marked as an estimate
with the reasoning. Replace them with figures from our own drives as soon as there are any:
a snowy day on the demo route is worth more than everything in this file.

What the literature does and does not support
---------------------------------------------
* Falling snow along the path: negligible below 6 GHz. ITU-R P.838-3 (2005), "Specific
  attenuation model for rain for use in prediction methods", gives (from its k and alpha
  coefficients) roughly 0.01 dB/km at 4-5 GHz for 10 mm/h of rain, and less at 2 GHz and
  800 MHz. Oguchi, "Electromagnetic wave propagation and scattering in rain and other
  hydrometeors", Proc. IEEE 71(9), 1983, reviews why wet snow can attenuate several times
  more than rain of the same melted rate; even so, heavy snowfall (a few mm/h melted) over
  our < 2 km paths stays well under 0.1 dB. (ITU-R P.840 covers clouds and fog, not snow; it
  is also negligible at these frequencies.) So no path term for snowfall itself.
* Wet snow on the vehicle's roof antenna: this is where the loss is. Fukui (Hokuriku) snow
  is notoriously wet, falling near 0 degC. Hallikainen, Ulaby and Abdelrazik, "Dielectric
  properties of snow in the 3 to 37 GHz range", IEEE Trans. Antennas Propag. 34(11), 1986,
  measured wet snow with 0-12.3 % liquid water by volume and fitted a Debye-like model. With
  it, wet snow of density 0.3 g/cm3 has eps ~ 2.2-j0.24 (5 % water) to 2.9-j0.58 (10 %) at
  4.7 GHz, and ~ 2.3-j0.13 to 3.1-j0.32 at 2.1 GHz (our evaluation of the fit, with its
  constants as we transcribed them; check them against the paper before quoting). A planar
  layer at normal incidence (attenuation plus mismatch, computed by us from those eps) costs:

      layer      4.7 GHz (n79)   2.1 GHz (LTE b1)   0.85 GHz (LTE b19)
      1 cm       1.3-2.4 dB      0.5-1.2 dB         0.1-0.3 dB
      3 cm       2.6-5.1 dB      1.0-1.7 dB         0.5-1.2 dB
      5 cm       3.8-7.9 dB      0.9-2.5 dB         0.9-1.6 dB

  Measured wet-radome losses are of the same order: Kurri and Huuskonen, "Measurements of the
  transmission loss of a radome at different rain intensities", J. Atmos. Oceanic Technol.
  25, 2008, report 3 dB two-way (~1.5 dB one-way) for a dirty C-band radome at 15.1 mm/h
  of rain (abstract); Blevis, "Losses due to rain on radomes and antenna reflecting
  surfaces", IEEE Trans. Antennas Propag. 13(1), 1965, is the classic account of why a water
  film matters. Snow accretion on antennas is a known operational problem in Japan (Radio
  Research Laboratory Review 29, 1983: snow accretion on a 19.45 GHz earth-station antenna at
  Wakkanai, and radome covers against it). Caveat: a roof antenna is a small element, not a
  plane wave through a flat layer; detuning by a snow cap could cost more or less than the
  table. Dry, cold snow (liquid water ~0) costs almost nothing at these frequencies.
  The loss hits every signal the antenna receives (serving cell, neighbours, background
  interference) and the uplink alike, so it lowers RSRP one-for-one but SINR only where the
  link is noise-limited (the cell edge).
* Deep fades: no study we know measures how fast wet snow builds up on and sheds from a moving
  shuttle's antenna, so the rate and duration of the fades below are estimates; their depth
  is the thick-layer (3-5 cm) end of the table. We did not find support for night-specific
  fades (e.g. foliage at night), so night has none.
* Driving speed in snow: human-driven traffic slows with snow intensity. HCM 2010 Exhibit
  10-15 (as tabulated in FHWA-HOP-13-042, Appendix A, Table 33) cuts freeway capacity by 4 %
  (light snow, <= 0.05 in/h) to 22 % (> 0.5 in/h); Hranac et al., "Empirical Studies on
  Traffic Flow in Inclement Weather", FHWA-HOP-07-073, 2006, section 5, fit free-flow-speed
  reductions that grow with snow intensity; "Impacts of Snowy Weather Conditions on
  Expressway Traffic Flow Characteristics", Discrete Dyn. Nat. Soc. 2013 (article 791743),
  Table 4, reports mean speed down 1.8 % (light), 6.6 % (moderate) and 28 % (heavy snow
  day). A Level 4 shuttle's speed in snow is set by its operator's operational design domain,
  not by driver behaviour; 20 % slower on a snow-covered road is our estimate between the
  moderate and heavy figures. Use the operator's ODD figure when there is one.
* Daylight vs late night: public cells follow the diurnal demand curve. Paul, Subramanian,
  Buddhikot and Das, "Understanding traffic dynamics in cellular data networks", IEEE
  INFOCOM 2011, and Shafiq, Ji, Liu and Wang, "Characterizing and modeling internet traffic
  dynamics of cellular devices", ACM SIGMETRICS 2011, both show a strong daily cycle with
  the trough in the small hours. Opensignal, "The 5G Opportunity" (Feb 2019, 77 countries)
  finds 4G download speeds fastest around 03:00 local time; e.g. the US national average
  ranged from 15.3 Mbit/s at the busiest hour to 28.8 Mbit/s at the quietest (x1.9), with
  most European busy hours at 20:00-23:00. So "night" here means late night / pre-dawn
  (roughly 00:00-05:00). An evening run after dark (17:00-23:00) is near the busy hour and
  should use the daylight load; there is no dusk/evening model. The local 5G network carries
  the fleet's own traffic and does not follow the public demand curve, so only LTE changes.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from telemetry.drivelog import Conditions

__all__ = [
    "CLEAR_DAYLIGHT",
    "CLEAR_NIGHT",
    "MODELS",
    "SNOW_DAYLIGHT",
    "SNOW_NIGHT",
    "ConditionModel",
    "LinkConditions",
    "model_for",
]


class LinkConditions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a condition does to one link; the defaults change nothing.

    * ``extra_path_loss_db``: mean loss at the vehicle's antenna, taken off every received
      signal (serving, neighbours, background interference) and the uplink budget.
    * ``extra_shadow_db``: added in quadrature to the link's shadow-fading deviation.
    * ``fade_rate_per_min``, ``fade_depth_db``, ``fade_duration_s``: Poisson-timed episodes of
      extra antenna loss on top of the mean, each 0.5-1.5x the nominal depth and duration,
      drawn from their own seeded RNG per vehicle and link.
    * ``rtt_factor``: multiplies the median probe RTT (queueing in a busier or quieter cell).
    * ``load_factor``: multiplies the neighbour-cell load (interference from listed and
      unlisted cells, RSRQ), and the resource share left to the shuttle, ``1 - load``, scales
      its throughput.
    """

    extra_path_loss_db: float = 0.0
    extra_shadow_db: float = 0.0
    fade_rate_per_min: float = 0.0
    fade_depth_db: float = 0.0
    fade_duration_s: float = 0.0
    rtt_factor: float = 1.0
    load_factor: float = 1.0

    def __post_init__(self) -> None:
        for name in ("extra_path_loss_db", "extra_shadow_db", "fade_rate_per_min",
                     "fade_depth_db", "fade_duration_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, not {value!r}")
        for name in ("rtt_factor", "load_factor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be finite and > 0, not {value!r}")
        if self.fade_rate_per_min > 0.0 and not (self.fade_depth_db and self.fade_duration_s):
            raise ValueError("fades need fade_depth_db and fade_duration_s > 0")

    @property
    def fades(self) -> bool:
        return self.fade_rate_per_min > 0.0


class ConditionModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Weather and light for a simulated drive: per-link radio knobs, driving speed, and tag.

    ``speed_factor`` scales the whole speed profile (cruise and junction speeds). A msgspec
    Struct so that a scenario file can carry its own model through ``msgspec.convert``.
    """

    name: str
    conditions: Conditions
    l5g: LinkConditions = LinkConditions()
    lte: LinkConditions = LinkConditions()
    speed_factor: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed_factor) and 0.0 < self.speed_factor <= 1.5):
            raise ValueError(f"speed_factor must be in (0, 1.5], not {self.speed_factor!r}")


# -- The knobs, with where each number comes from (see the module docstring for the sources) --

#: Snow, local 5G (n79, 4.7 GHz). Loss 3 dB: the 2-3 cm wet-snow row of the table (Hallikainen
#: et al. 1986 eps; Kurri and Huuskonen 2008's ~1.5 dB one-way wet radome at C-band as a
#: cross-check). Fades 5 dB on top (8 dB in all): the 5 cm, 10 % water end of the table.
#: Fade rate 0.5/min and 15 s (so ~12 % of the time): estimates, no measurement known.
#: Extra shadowing 1.5 dB (4 -> 4.3 dB): estimate for patchy snow on trees and antenna.
_SNOW_L5G: Final = LinkConditions(
    extra_path_loss_db=3.0,
    extra_shadow_db=1.5,
    fade_rate_per_min=0.5,
    fade_depth_db=5.0,
    fade_duration_s=15.0,
)
#: Snow, public LTE (b1 2.1 GHz, b19 850 MHz): the same layers cost about a third as much.
#: Loss 1 dB: the low end of the 2-3 cm rows at 2.1 GHz, the high end at 850 MHz (the demo's
#: north leg is served on b19). Fades 1.5 dB on top (2.5 dB in all: 5 cm at 2.1 GHz). Rate,
#: duration and extra shadowing: the same estimates as for local 5G.
_SNOW_LTE: Final = LinkConditions(
    extra_path_loss_db=1.0,
    extra_shadow_db=1.5,
    fade_rate_per_min=0.5,
    fade_depth_db=1.5,
    fade_duration_s=15.0,
)
#: Late night, public LTE. Load x0.6 (0.6 -> 0.36 of neighbour resources busy): estimate.
#: The diurnal curve (Paul et al. 2011; Shafiq et al. 2011) puts 00:00-05:00 demand well
#: below half of daytime demand, which alone would suggest x0.3-0.5; we stay milder because
#: the result must not exceed what users see: in the simulator x0.6 gives a larger share
#: (1 - 0.36) / (1 - 0.6) = 1.6x and +2 dB SINR, ~1.8x throughput in all, just under the ~1.9x
#: quietest/busiest-hour ratio Opensignal (2019) reports (US national, Switzerland), as it
#: should be since daytime service hours are not the busiest hour. x0.5 would give 2.0x.
#: RTT x0.87: estimate. Of the ~48 ms daytime median, ~10 ms is taken as scheduling and
#: queueing in the cell; M/M/1 waiting ~ rho / (1 - rho) falls from 1.5 to 0.56 as load goes
#: 0.6 -> 0.36, so ~10 ms becomes ~4 ms and 48 ms ~42 ms.
_NIGHT_LTE: Final = LinkConditions(load_factor=0.6, rtt_factor=0.87)
#: Snow road speeds x0.8: estimate between the moderate (6.6 %) and heavy-snow-day (28 %)
#: speed reductions of Discrete Dyn. Nat. Soc. 2013 Table 4 and HCM 2010 Exhibit 10-15's trend.
_SNOW_SPEED: Final = 0.8

CLEAR_DAYLIGHT: Final = ConditionModel(
    name="clear-daylight",
    conditions=Conditions(weather="clear", light="daylight", road="dry"),
)
"""The baseline: the simulator's own calibration (scenarios/sim/radio.py), unchanged."""

SNOW_DAYLIGHT: Final = ConditionModel(
    name="snow-daylight",
    conditions=Conditions(weather="snow", light="daylight", road="snow"),
    l5g=_SNOW_L5G,
    lte=_SNOW_LTE,
    speed_factor=_SNOW_SPEED,
)
"""Wet snow falling on a snow-covered road in service hours: the programme's case."""

CLEAR_NIGHT: Final = ConditionModel(
    name="clear-night",
    conditions=Conditions(weather="clear", light="night", road="dry"),
    lte=_NIGHT_LTE,
)
"""Late night / pre-dawn on a dry road: public cells near their daily trough."""

SNOW_NIGHT: Final = ConditionModel(
    name="snow-night",
    conditions=Conditions(weather="snow", light="night", road="snow"),
    l5g=_SNOW_L5G,
    lte=msgspec.structs.replace(
        _SNOW_LTE, load_factor=_NIGHT_LTE.load_factor, rtt_factor=_NIGHT_LTE.rtt_factor
    ),
    speed_factor=_SNOW_SPEED,
)
"""Snow and late night together: snow's antenna loss and speeds, night's quieter LTE cells."""

#: Every name ``model_for`` accepts. "snow" alone means snow in daylight.
MODELS: Final[dict[str, ConditionModel]] = {
    "daylight": CLEAR_DAYLIGHT,
    "clear-daylight": CLEAR_DAYLIGHT,
    "night": CLEAR_NIGHT,
    "clear-night": CLEAR_NIGHT,
    "snow": SNOW_DAYLIGHT,
    "snow-daylight": SNOW_DAYLIGHT,
    "snow-night": SNOW_NIGHT,
}


def model_for(name: str) -> ConditionModel:
    """The model called ``name`` (case and surrounding spaces ignored); ValueError if none."""
    model = MODELS.get(name.strip().lower())
    if model is None:
        raise ValueError(
            f"unknown condition model {name!r}; known: {', '.join(sorted(MODELS))}"
        )
    return model
