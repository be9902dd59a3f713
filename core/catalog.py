"""The catalogue of measured quantities: allowed units and the instrument range a value must lie in.

Ranges are instrument spans of common industrial transmitters, used as defaults for a point's valid range
(a reading outside it is rejected as implausible, never stored as a value). Units follow the tag-key
convention ``<name>_<unit>`` (STYLE.md B7).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.model import PointKind


@dataclass(frozen=True, slots=True)
class QuantitySpec:
    units: tuple[str, ...]
    valid_min: float
    valid_max: float
    kind: PointKind = PointKind.GAUGE


QUANTITIES: dict[str, QuantitySpec] = {
    "temperature": QuantitySpec(("c",), -50.0, 1200.0),
    "humidity": QuantitySpec(("pct",), 0.0, 100.0),
    "dew_point": QuantitySpec(("c",), -100.0, 60.0),
    "pressure": QuantitySpec(("kpa", "pa", "mpa"), -200.0, 100000.0),
    "voc": QuantitySpec(("ppm", "mg_m3"), 0.0, 10000.0),
    "nmhc": QuantitySpec(("mg_m3",), 0.0, 10000.0),
    "h2": QuantitySpec(("ppm", "pct_lel"), 0.0, 40000.0),
    "co": QuantitySpec(("ppm",), 0.0, 2000.0),
    "co2": QuantitySpec(("ppm",), 0.0, 50000.0),
    "hf": QuantitySpec(("ppm",), 0.0, 100.0),
    "o2": QuantitySpec(("pct",), 0.0, 25.0),
    "smoke": QuantitySpec(("bool", "pct_obs_m"), 0.0, 100.0),
    "flame": QuantitySpec(("bool",), 0.0, 1.0),
    "vibration": QuantitySpec(("mm_s",), 0.0, 100.0),
    "voltage": QuantitySpec(("v",), -1000.0, 1000.0),
    "current": QuantitySpec(("a",), -5000.0, 5000.0),
    "power": QuantitySpec(("kw",), -100000.0, 100000.0),
    "ph": QuantitySpec(("ph",), 0.0, 14.0),
    "cod": QuantitySpec(("mg_l",), 0.0, 10000.0),
    "ammonia": QuantitySpec(("mg_l",), 0.0, 1000.0),
    "fluoride": QuantitySpec(("mg_l",), 0.0, 1000.0),
    "nickel": QuantitySpec(("mg_l",), 0.0, 100.0),
    "cobalt": QuantitySpec(("mg_l",), 0.0, 100.0),
    "flow": QuantitySpec(("m3_h", "l_min", "nm3_h", "t_h", "l_s", "m3_s"), 0.0, 1_000_000.0),
    "level": QuantitySpec(("m", "pct"), 0.0, 100.0),
    "speed": QuantitySpec(("m_min", "rpm"), 0.0, 10000.0),
    "state": QuantitySpec(("bool",), 0.0, 1.0),
    # HJ 212 outfall and stack factors (domain/standards.md 2.10) and treatment-equipment data (SBxxx-RS/-RT)
    "total_nitrogen": QuantitySpec(("mg_l",), 0.0, 1000.0),
    "total_phosphorus": QuantitySpec(("mg_l",), 0.0, 1000.0),
    "suspended_solids": QuantitySpec(("mg_l",), 0.0, 10000.0),
    "manganese": QuantitySpec(("mg_l",), 0.0, 100.0),
    "particulates": QuantitySpec(("mg_m3",), 0.0, 10000.0),
    "run_state": QuantitySpec(("code",), 0.0, 99.0),
    "run_time": QuantitySpec(("h",), 0.0, 24.0),
    "energy": QuantitySpec(("kwh", "mwh"), 0.0, 1e12, PointKind.COUNTER),
    "volume": QuantitySpec(("m3", "nm3"), 0.0, 1e12, PointKind.COUNTER),
    "mass": QuantitySpec(("t", "kg"), 0.0, 1e12, PointKind.COUNTER),
    # production counters of a process (energy per unit of output): cells, packs, pieces, Ah of capacity
    "output": QuantitySpec(("cells", "packs", "pcs", "ah"), 0.0, 1e12, PointKind.COUNTER),
}


def unit_of_key(key: str) -> str:
    """Return the unit suffix that a point key should end with, e.g. ``voc_ppm`` -> ``ppm``."""
    for units in sorted({u for spec in QUANTITIES.values() for u in spec.units}, key=len, reverse=True):
        if key.endswith("_" + units):
            return units
    return ""
