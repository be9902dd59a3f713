"""Meter profiles of the demo plant: what each counter consumes hour by hour, and its total at any instant.

A counter's total is ``offset + ∫ rate dt`` from the counter epoch, with a rate that is constant within each
hour, so the register only increases, is a pure function of time (a restarted simulator continues the same
totals) and is cheap: hourly rates are computed with numpy in 30-day chunks and their running sum is cached.

The rate is ``nominal × shape(t) / mean(shape)``, so a point's configured ``nominal`` stays its average increase
per hour over a year, and the shape says when it is spent:

* ``line`` (coating, rolling, winding, welding, injection, PACK): two 12-hour shifts (08:00-20:00 day,
  20:00-08:00 night at lower load), Saturday one busy shift, Sunday maintenance; a small base load;
* ``oven`` (drying, coater ovens): ovens are kept hot, so a high base load plus the production share;
* ``formation`` (formation, grading): cabinets charge cells for two hours and discharge them for one with energy
  feedback (the discharged energy goes back to the bus), so net import dips every third hour;
* ``chiller``: follows the outdoor temperature of Changzhou (a seasonal and a daily cycle) and a little of the
  production;
* ``compressed_air``: production plus the normal leakage, which is the night-time base load;
* ``continuous`` (aging rooms, wastewater, RTO) and ``utility`` (nitrogen, water, steam, gas mains): mostly base;
* ``production``: output counters (cells), zero without production.

A parent meter of the configured meter tree (the 110 kV incomer, the compressed-air, nitrogen, steam and gas
mains) is the sum of its children's true consumption plus a line loss and its own unmetered loads (see
``simulator.plant``), so a balance of parent against children is right by construction and a broken sub-meter
shows as a loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from simulator.signals import COUNTER_EPOCH_S

HOUR_S = 3600.0
_LOCAL_OFFSET_S = 8 * 3600.0  # China Standard Time
_CHUNK_H = 24 * 30  # hourly rates computed 30 days at a time
_NOISE = 0.04  # hour-to-hour variation of a meter (± relative)
_YEAR_H = 24 * 365

#: Production load per shift, by the weekday the shift starts on (Monday = 0): (day shift, night shift).
SHIFT_LOAD = ((1.0, 0.72), (1.0, 0.72), (1.0, 0.72), (1.0, 0.72), (1.0, 0.72), (0.85, 0.3), (0.15, 0.15))
#: Base load (share of the shape that does not follow production) per profile.
BASE = {
    "line": 0.2,
    "oven": 0.6,
    "formation": 0.15,
    "compressed_air": 0.3,
    "continuous": 0.75,
    "utility": 0.4,
    "chiller": 0.0,
    "production": 0.0,
}
PROFILES = tuple(BASE)
#: Formation cabinets: relative net import in each hour of a 3-hour cycle (charge, charge, discharge with feedback).
FORMATION_CYCLE = (1.3, 1.3, 0.4)


def shift_load(t: np.ndarray) -> np.ndarray:
    """Production load (0-1) at epoch seconds ``t``: day and night shifts, weekends."""
    local = t + _LOCAL_OFFSET_S
    hour = (local % 86_400.0) // HOUR_S
    day_shift = (hour >= 8) & (hour < 20)
    # the weekday the running shift started on (a night shift after midnight belongs to the day before)
    shift_day = ((((local - 8 * HOUR_S) // 86_400.0) + 3) % 7).astype(int)  # 1970-01-01 was a Thursday
    table = np.array(SHIFT_LOAD)
    return np.where(day_shift, table[shift_day, 0], table[shift_day, 1])


def outdoor_temp_c(t: np.ndarray) -> np.ndarray:
    """Outdoor air temperature in Changzhou (°C): about 4 °C in mid-January, 29 °C in late July, ±4 °C a day."""
    days = (t - 1_735_689_600.0) / 86_400.0  # days since 2025-01-01
    seasonal = 16.5 - 12.5 * np.cos(2 * math.pi * (days - 18.0) / 365.25)
    local_h = ((t + _LOCAL_OFFSET_S) % 86_400.0) / HOUR_S
    return seasonal + 4.0 * np.cos(2 * math.pi * (local_h - 14.0) / 24.0)


def shape(profile: str, t: np.ndarray) -> np.ndarray:
    """Relative consumption rate (not normalised) of a profile at hour starts ``t`` (epoch seconds)."""
    if profile not in BASE:
        raise ValueError(f"unknown meter profile {profile!r}; known: {', '.join(PROFILES)}")
    mid = t + HOUR_S / 2
    load = shift_load(mid)
    base = BASE[profile]
    if profile == "formation":
        cycle = np.array(FORMATION_CYCLE)[((t - COUNTER_EPOCH_S) // HOUR_S).astype(int) % len(FORMATION_CYCLE)]
        return base + (1 - base) * load * cycle
    if profile == "chiller":
        cooling = 0.25 + 0.75 * np.clip((outdoor_temp_c(mid) - 10.0) / 15.0, 0.0, 1.6)
        return cooling * (0.85 + 0.15 * load)
    return base + (1 - base) * load


@cache
def mean_shape(profile: str) -> float:
    """The mean of a profile's shape over the first year from the counter epoch (so ``nominal`` is the mean)."""
    t = COUNTER_EPOCH_S + HOUR_S * np.arange(_YEAR_H, dtype=float)
    return float(shape(profile, t).mean())


@dataclass
class ProfileCounter:
    """A counter register driven by a profile; ``value(t)`` is its reading at epoch second ``t``."""

    profile: str
    nominal: float  # mean increase per hour
    offset: float  # the register at the counter epoch
    seed: int
    _cum: np.ndarray = field(default_factory=lambda: np.zeros(1), init=False, repr=False)

    def __post_init__(self) -> None:
        self._scale = self.nominal / mean_shape(self.profile)

    def hourly(self, first_hour: int, count: int) -> np.ndarray:
        """Consumption in each of ``count`` hours from hour ``first_hour`` after the epoch (chunk-aligned calls)."""
        t = COUNTER_EPOCH_S + HOUR_S * np.arange(first_hour, first_hour + count, dtype=float)
        noise = np.random.default_rng([self.seed, first_hour // _CHUNK_H]).uniform(-_NOISE, _NOISE, count)
        return np.maximum(self._scale * shape(self.profile, t) * (1.0 + noise), 0.0)

    def _grow(self, hours: int) -> None:
        while len(self._cum) <= hours + 1:
            first = len(self._cum) - 1  # always a multiple of the chunk
            chunk = self.hourly(first, _CHUNK_H)
            self._cum = np.concatenate([self._cum, self._cum[-1] + np.cumsum(chunk)])

    def consumed(self, t: float) -> float:
        """Consumption from the epoch to ``t``."""
        elapsed_h = max(t - COUNTER_EPOCH_S, 0.0) / HOUR_S
        hour = int(elapsed_h)
        self._grow(hour)
        return float(self._cum[hour] + (self._cum[hour + 1] - self._cum[hour]) * (elapsed_h - hour))

    def rate_per_h(self, t: float) -> float:
        """The consumption rate during the hour holding ``t``."""
        hour = int(max(t - COUNTER_EPOCH_S, 0.0) // HOUR_S)
        self._grow(hour)
        return float(self._cum[hour + 1] - self._cum[hour])

    def value(self, t: float) -> float:
        return round(self.offset + self.consumed(t), 3)


@dataclass
class OutdoorTemperature:
    """The weather station's outdoor temperature: the curve the chillers follow, with a little sensor noise."""

    seed: int
    _state: float = field(default=0.0, init=False, repr=False)

    def value(self, t: float) -> float:
        rng = np.random.default_rng([self.seed, int(t)])
        self._state = 0.9 * self._state + 0.1 * float(rng.normal())
        return round(float(outdoor_temp_c(np.array([t]))[0]) + 0.3 * self._state, 2)


def profile_for(process: str, device_kind: str, device_code: str, key: str, quantity: str) -> str:
    """The profile of a counter point of the demo plant, from its area's process and its device."""
    if quantity == "output":
        return "production"
    if device_kind in ("air_compressor", "air_meter") or key.startswith("air_"):
        return "compressed_air"
    if "chiller" in device_code:
        return "chiller"
    if process in ("drying", "baking") or "oven" in device_kind:
        return "oven"
    if process in ("formation", "grading"):
        return "formation"
    if process in ("aging", "wastewater", "voc_incinerator", "warehouse", "electrolyte_store", "hazwaste_store"):
        return "continuous"
    if process == "utilities" or key.startswith(("water_", "n2_", "gas_", "steam_")):
        return "utility"
    return "line"
