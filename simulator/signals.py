"""Signal shapes of a battery plant's sensors and meters: daily cycles, noise, counters that only increase.

Everything is a pure function of time and a seeded random stream, so a run is reproducible and a counter
continues where the previous run left off (its total is a closed-form integral of the consumption rate).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

#: Counters accumulate from this instant, so totals are consistent across simulator restarts.
COUNTER_EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_DAY_S = 86_400.0
#: China Standard Time: the production day of the demo plant (two shifts, lowest load around 04:00).
_LOCAL_OFFSET_S = 8 * 3600.0

# (relative noise, daily amplitude relative to nominal or absolute for temperatures) per quantity.
_SHAPES: dict[str, tuple[float, float]] = {
    "temperature": (0.004, 0.02),
    "humidity": (0.01, 0.08),
    "dew_point": (0.01, 0.02),
    "voc": (0.12, 0.2),
    "nmhc": (0.08, 0.15),
    "h2": (0.15, 0.0),
    "co": (0.15, 0.0),
    "hf": (0.15, 0.0),
    "co2": (0.03, 0.05),
    "o2": (0.01, 0.0),
    "vibration": (0.05, 0.05),
    "pressure": (0.01, 0.0),
    "voltage": (0.002, 0.0),
    "current": (0.02, 0.1),
    "power": (0.03, 0.2),
    "ph": (0.008, 0.0),
    "cod": (0.05, 0.1),
    "ammonia": (0.06, 0.1),
    "fluoride": (0.06, 0.1),
    "nickel": (0.1, 0.0),
    "cobalt": (0.1, 0.0),
    "flow": (0.03, 0.15),
    "speed": (0.005, 0.0),
    "level": (0.01, 0.0),
}


def production_factor(t: float) -> float:
    """Relative plant load at epoch second ``t``: 1 on average, lower at night (dimensionless)."""
    hours = ((t + _LOCAL_OFFSET_S) % _DAY_S) / 3600.0
    return 1.0 + 0.15 * math.sin(2 * math.pi * (hours - 10.0) / 24.0)


def production_hours(t: float) -> float:
    """Integral of ``production_factor`` from the counter epoch to ``t``, in hours."""
    elapsed_h = (t - COUNTER_EPOCH_S) / 3600.0
    phase = lambda s: 2 * math.pi * (((s + _LOCAL_OFFSET_S) / 3600.0) - 10.0) / 24.0  # noqa: E731
    return elapsed_h - 0.15 * 24.0 / (2 * math.pi) * (math.cos(phase(t)) - math.cos(phase(COUNTER_EPOCH_S)))


@dataclass
class GaugeSignal:
    """A gauge: nominal value, a daily cycle, and first-order autocorrelated noise, kept in range."""

    nominal: float
    quantity: str
    lo: float
    hi: float
    rng: random.Random
    _state: float = field(default=0.0, init=False)

    def value(self, t: float) -> float:
        rel_noise, daily = _SHAPES.get(self.quantity, (0.01, 0.0))
        scale = max(abs(self.nominal), 1.0) if self.quantity in ("temperature", "dew_point") else abs(self.nominal)
        # AR(1) noise: readings of a real transmitter are correlated from one sample to the next
        self._state = 0.8 * self._state + 0.6 * self.rng.gauss(0.0, 1.0)
        cycle = daily * scale * (production_factor(t) - 1.0) / 0.15
        value = self.nominal + cycle + rel_noise * max(scale, 0.05) * self._state
        if self.quantity in ("voc", "nmhc", "h2", "co", "hf", "nickel", "cobalt", "cod", "ammonia", "fluoride"):
            value = max(value, 0.0)
        return min(max(value, self.lo), self.hi)


@dataclass
class CounterSignal:
    """A counter register: total = rate x production hours since the epoch, so it only increases."""

    rate_per_h: float
    offset: float

    def value(self, t: float) -> float:
        return round(self.offset + self.rate_per_h * production_hours(t), 3)
