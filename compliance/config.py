"""The ``compliance:`` section of the plant file: outfalls, the limits they answer to, and their permits."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from compliance.limits import Averaging, Limit
from core.plant import PlantConfig

PointRef = str  # "device/point_key" within the outfall's site


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollutantConfig(_Item):
    pollutant: str = Field(pattern=r"^[a-zA-Z0-9]{2,7}$", description="HJ 212 factor code, e.g. w01018")
    point: PointRef = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$",
        description="device/point holding the values to judge (real-time or minute data)",
    )
    interval_s: float = Field(60.0, gt=0, description="The point's sampling interval (invalid-data time, trend)")


class TotalConfig(_Item):
    pollutant: str = Field(pattern=r"^[a-zA-Z0-9]{2,7}$")
    point: PointRef = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$", description="device/point holding the interval totals (-Cou)"
    )


class EquipmentConfig(_Item):
    """Treatment equipment whose running state (HJ 212 ``SBxxx-RS``) must keep up with production."""

    name: str
    point: PointRef = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$",
        description="device/point holding the SBxxx-RS state (0 off, 1 running, 2 calibrating, "
        "3 maintenance, 4 alarm, 5 back-flush)",
    )


class PermitConfig(_Item):
    number: str = Field(min_length=1, description="排污许可证编号")
    valid_from: date
    valid_to: date | None = None
    limits: list[Limit] = Field(default_factory=list)
    #: Permitted totals per year, in the -Cou unit of the pollutant (kg, or m3 for the flow w00000)
    annual_totals: dict[str, float] = Field(default_factory=dict)


class OutfallConfig(_Item):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    site: str
    name: str
    medium: Literal["water", "air"]
    regime: str = Field(description="direct, indirect, workshop, stack, fenceline, fugitive, fugitive_special")
    standards: list[str] = Field(default_factory=lambda: ["GB 30484-2013"])
    pollutants: list[PollutantConfig] = Field(min_length=1)
    flow_point: PointRef | None = Field(None, description="wastewater flow, for flow-weighted means")
    o2_point: PointRef | None = Field(None, description="stack O2 (%), for the reference-O2 correction")
    o2_reference_pct: float | None = Field(None, ge=0, lt=21)
    #: Fewest valid values for a period to count (flue gas from minute data: hour 45, day 20 x 45)
    min_valid: dict[Averaging, int] = Field(default_factory=dict)
    permit: PermitConfig | None = None
    totals: list[TotalConfig] = Field(default_factory=list)
    equipment: list[EquipmentConfig] = Field(default_factory=list)
    #: Samples are evaluated once their data time is this old, and never again: more than the delivery delay of
    #: the points' data (real-time: seconds; minute data 2051 and hourly 2061 carry the interval's *start* as
    #: DataTime and arrive after it ends, so give them the interval plus the delay).
    lag_s: float = Field(120.0, ge=0)

    @model_validator(mode="after")
    def _o2(self) -> OutfallConfig:
        if (self.o2_point is None) != (self.o2_reference_pct is None):
            raise ValueError("give o2_point and o2_reference_pct together")
        return self

    def permit_limits(self, at: date) -> list[Limit]:
        permit = self.permit
        if permit is None or at < permit.valid_from or (permit.valid_to is not None and at > permit.valid_to):
            return []
        return list(permit.limits)


class ComplianceSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outfalls: list[OutfallConfig] = Field(default_factory=list)


def check_compliance(section: ComplianceSection, plant: PlantConfig) -> list[tuple[tuple, str]]:
    """Every point an outfall names exists in its site; codes are unique per site."""
    points = {(s.code, f"{d.code}/{p.key}") for s in plant.sites for a in s.areas for d in a.devices for p in d.points}
    sites = {s.code for s in plant.sites}
    problems: list[tuple[tuple, str]] = []
    seen: set[tuple[str, str]] = set()
    for i, outfall in enumerate(section.outfalls):
        where = ("outfalls", i)
        if outfall.site not in sites:
            problems.append(((*where, "site"), f"no site {outfall.site!r}"))
            continue
        if (outfall.site, outfall.code) in seen:
            problems.append(((*where, "code"), f"outfall {outfall.code!r} appears twice"))
        seen.add((outfall.site, outfall.code))
        refs = [(("pollutants", j, "point"), p.point) for j, p in enumerate(outfall.pollutants)]
        refs += [(("totals", j, "point"), t.point) for j, t in enumerate(outfall.totals)]
        refs += [(("equipment", j, "point"), e.point) for j, e in enumerate(outfall.equipment)]
        refs += [((name,), getattr(outfall, name)) for name in ("flow_point", "o2_point") if getattr(outfall, name)]
        for loc, ref in refs:
            if (outfall.site, ref) not in points:
                problems.append(((*where, *loc), f"no point {ref!r} in site {outfall.site!r}"))
    return problems
