"""Units of the energy ledgers: the unit of each medium and the factor from a counter point's unit to it."""

from __future__ import annotations

#: The ledger unit of each medium (energy_interval.quantity is in this unit).
MEDIUM_UNIT = {
    "electricity": "kWh",
    "water": "m3",
    "compressed_air": "Nm3",
    "nitrogen": "Nm3",
    "steam": "t",
    "natural_gas": "Nm3",
}

#: (medium, point unit) -> factor to the medium's unit; volume units m3/nm3 are taken as read (the meter
#: reports normal cubic metres for gases), water in t counts as m3 (1 t = 1 m3).
_FACTORS = {
    ("electricity", "kwh"): 1.0,
    ("electricity", "mwh"): 1000.0,
    ("water", "m3"): 1.0,
    ("water", "nm3"): 1.0,
    ("water", "t"): 1.0,
    ("water", "kg"): 0.001,
    ("compressed_air", "m3"): 1.0,
    ("compressed_air", "nm3"): 1.0,
    ("nitrogen", "m3"): 1.0,
    ("nitrogen", "nm3"): 1.0,
    ("steam", "t"): 1.0,
    ("steam", "kg"): 0.001,
    ("natural_gas", "m3"): 1.0,
    ("natural_gas", "nm3"): 1.0,
}


def factor(medium: str, point_unit: str) -> float:
    """Factor from the counter point's unit to the ledger unit of ``medium``; ValueError when none applies."""
    try:
        return _FACTORS[(medium, point_unit.lower())]
    except KeyError:
        raise ValueError(
            f"a {medium} meter cannot read a counter in {point_unit!r} (ledger unit {MEDIUM_UNIT.get(medium)})"
        ) from None
