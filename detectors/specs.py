"""The ``rules:`` section of the plant configuration: one pydantic spec per rule type, and the checks against
the registry that a single item cannot make alone (a selector that matches nothing, a gas level above 25 %LEL).

A rule names what it watches with a ``select`` (area, device kind, device or point key; globs allowed), how it
scores (its type), and the severities it can classify into. The engine builds one detector and one trigger per
(rule, subject). Numbers in the default rule pack cite their source in a ``basis`` field.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.model import PointKind, Severity
from core.plant import PlantConfig
from core.registry import PlantIndex

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=100)]
SeverityName = Literal["low", "medium", "high", "critical"]
Names = str | list[str] | None

#: Lower explosive limits in ppm (vol %), for gas levels given in %LEL. H2 4.0 vol % (standards.md 7.3);
#: CO 12.5 vol % and CH4 5.0 vol % (NIOSH Pocket Guide). Solvent vapour (VOC) has no single LEL: sensors
#: report it as ppm of a calibration gas, so VOC levels are given in ppm.
LEL_PPM = {"h2": 40_000.0, "co": 125_000.0, "ch4": 50_000.0}
#: NFPA 855 / NFPA 69: keep flammable atmospheres at or below 25 % of the LFL (standards.md 7.1, 7.3).
MAX_PCT_LEL = 25.0


def severity(name: str) -> Severity:
    return Severity[name.upper()]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Select(_Spec):
    """Which subjects a rule watches; every given field must match (lists: any of; globs allowed)."""

    site: Names = None
    area: Names = None
    device: Names = None
    device_kind: Names = None
    key: Names = Field(None, description="point key, e.g. cell_temp_c or *_temp_c")
    quantity: Names = None


class LevelSpec(_Spec):
    at: float
    severity: SeverityName
    on_delay_s: float | None = Field(None, ge=0, description="overrides the rule's on-delay for this level")


class _Rule(_Spec):
    id: RuleId
    name: str = Field(min_length=1)
    name_en: str | None = None
    basis: str | None = Field(None, description="where the numbers come from (standard clause, datasheet)")
    enabled: bool = True
    select: Select = Select()
    on_delay_s: float = Field(0.0, ge=0)
    off_delay_s: float = Field(0.0, ge=0)

    #: "point": one subject per selected point; "device": per selected device; "area": per area (votes).
    per: Literal["point", "device", "area"] = "point"


def _check_levels(levels: list[LevelSpec], rising: bool) -> None:
    if not levels:
        raise ValueError("at least one level is needed")
    for a, b in zip(levels, levels[1:], strict=False):
        if (b.at <= a.at) if rising else (b.at >= a.at):
            raise ValueError(f"levels must be {'increasing' if rising else 'decreasing'}: {a.at:g} then {b.at:g}")
        if severity(b.severity) <= severity(a.severity):
            raise ValueError(f"a further level must be more severe: {a.severity} then {b.severity}")


class LimitRule(_Rule):
    """High/high-high or low/low-low limits in engineering units, with deadband (ISA-18.2, standards.md 1.4)."""

    type: Literal["limit"]
    high: list[LevelSpec] = Field(default_factory=list)
    low: list[LevelSpec] = Field(default_factory=list)
    deadband: float = Field(0.0, ge=0, description="engineering units")

    @model_validator(mode="after")
    def _one_side(self) -> LimitRule:
        if bool(self.high) == bool(self.low):
            raise ValueError("give either high or low levels (a low limit is a rule of its own, as in ISA-18.2)")
        _check_levels(self.high or self.low, rising=bool(self.high))
        return self


class GasLevel(LevelSpec):
    unit: Literal["pct_lel", "ppm"] = "ppm"


class GasRule(_Rule):
    """Staged gas levels in %LEL or ppm (DB63/T 2286 two-stage detectors; never above 25 %LEL)."""

    type: Literal["gas"]
    gas: Literal["h2", "co", "ch4", "voc", "hf", "co2"]
    levels: list[GasLevel]
    deadband: float = Field(0.0, ge=0, description="in the unit of the levels")

    @model_validator(mode="after")
    def _levels(self) -> GasRule:
        if len({level.unit for level in self.levels}) > 1:
            raise ValueError("give all levels of one rule in the same unit")
        _check_levels(list(self.levels), rising=True)
        for level in self.levels:
            if level.unit == "pct_lel":
                if self.gas not in LEL_PPM:
                    raise ValueError(f"{self.gas} has no LEL here; give its levels in ppm")
                if level.at > MAX_PCT_LEL:
                    raise ValueError(
                        f"{level.at:g} %LEL is above {MAX_PCT_LEL:g} %LEL (NFPA 855/69: alarm at or "
                        "below 25 % of the lower flammable limit)"
                    )
        return self

    def ppm(self, value: float) -> float:
        """A level or deadband of this rule in ppm."""
        unit = self.levels[0].unit
        return value * LEL_PPM[self.gas] / 100.0 if unit == "pct_lel" else value


class RateRule(_Rule):
    """Rate of change over a window, e.g. dT/dt >= 1 degC/s for 3 s (GB 38031 criterion c)."""

    type: Literal["rate_of_rise"]
    window_s: float = Field(3.0, gt=0, description="the rate is taken over about this span")
    direction: Literal["rise", "fall"] = "rise"
    levels: list[LevelSpec] = Field(description="rates in units per second")
    deadband: float = Field(0.0, ge=0, description="units per second")

    @model_validator(mode="after")
    def _levels(self) -> RateRule:
        _check_levels(list(self.levels), rising=True)
        if self.levels[0].at <= 0:
            raise ValueError("rates must be positive (use direction: fall for a falling rate)")
        return self


class DeviationRule(_Rule):
    """Departure from a rolling baseline (median), in units or percent: VOC above baseline, voltage drop."""

    type: Literal["deviation"]
    direction: Literal["rise", "fall"] = "rise"
    window_s: float = Field(600.0, gt=0, description="baseline window")
    relative: bool = Field(False, description="levels in percent of the baseline")
    min_samples: int = Field(10, ge=3)
    levels: list[LevelSpec]
    deadband: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _levels(self) -> DeviationRule:
        _check_levels(list(self.levels), rising=True)
        if self.levels[0].at <= 0:
            raise ValueError("deviations must be positive (use direction: fall for a drop)")
        return self


class Expr(_Spec):
    """A voting expression: ``all``/``any`` of parts, ``k_of`` parts, or a leaf.

    Leaves are another rule's state (``rule`` at ``min_severity`` or worse) or a point condition (``key`` with
    ``above``/``below``). Within ``k_of`` each matching point or rule subject is one vote, so
    ``{k_of: 2, of: [{key: cell_temp_c, above: 60}]}`` is two-out-of-n across an area's cabinets.
    A point condition with ``per`` compares the ratio of the point to another point of the same device: an
    adsorber's ``{key: voc_out_mg_m3, per: voc_in_mg_m3, above: 0.2}`` is a removal efficiency below 80 %
    (a divisor at or below zero gives no ratio, so no vote).
    """

    all: list[Expr] | None = None
    any: list[Expr] | None = None
    k_of: int | None = Field(None, ge=1)
    of: list[Expr] | None = None
    rule: RuleId | None = None
    min_severity: SeverityName = "low"
    key: str | None = None
    device_kind: str | None = None
    above: float | None = None
    below: float | None = None
    per: str | None = Field(None, description="point key of the divisor, on the same device as ``key``")

    @model_validator(mode="after")
    def _one_form(self) -> Expr:
        forms = [
            self.all is not None,
            self.any is not None,
            self.k_of is not None,
            self.rule is not None,
            self.key is not None,
        ]
        if sum(forms) != 1:
            raise ValueError("an expression is exactly one of: all, any, k_of (with of), rule, key")
        if (self.k_of is None) != (self.of is None):
            raise ValueError("k_of needs of, and of needs k_of")
        if self.key is not None and (self.above is None) == (self.below is None):
            raise ValueError("a point condition needs exactly one of above or below")
        if self.per is not None and self.key is None:
            raise ValueError("per divides a point condition's key: give key as well")
        if self.k_of is not None and self.of is not None and not self.of:
            raise ValueError("of must not be empty")
        return self

    def leaves(self) -> Iterator[Expr]:
        for part in (self.all or []) + (self.any or []) + (self.of or []):
            yield from part.leaves()
        if self.rule is not None or self.key is not None:
            yield self


class VoteRule(_Rule):
    """k-of-n voting across an area's (or a device's) points and rules, e.g. smoke AND (heat rise OR CO)."""

    type: Literal["vote"]
    per: Literal["area", "device"] = "area"
    expr: Expr
    severity: SeverityName
    max_age_s: float = Field(30.0, gt=0, description="a point value older than this does not vote")


class StaleRule(_Rule):
    """No data from a device for N of its publishing intervals: silence is a finding, not safety."""

    type: Literal["stale"]
    per: Literal["device"] = "device"
    intervals: float = Field(3.0, ge=1.0)
    min_silence_s: float = Field(10.0, ge=0)
    severity: SeverityName


class OfflineRule(_Rule):
    """The device says it is offline (its retained status or last will on ``.../status``)."""

    type: Literal["offline"]
    per: Literal["device"] = "device"
    severity: SeverityName


class InvalidRule(_Rule):
    """A device keeps sending values it cannot have: nulls (sensor fault) or values outside the valid range."""

    type: Literal["invalid"]
    per: Literal["device"] = "device"
    count: int = Field(3, ge=1)
    within_s: float = Field(300.0, gt=0)
    severity: SeverityName


class FlatlineRule(_Rule):
    """A value that does not move at all for a window: a stuck transmitter."""

    type: Literal["flatline"]
    window_s: float = Field(1800.0, gt=0)
    tolerance: float = Field(0.0, ge=0, description="changes up to this much count as no change")
    min_samples: int = Field(5, ge=2)
    severity: SeverityName


class SpikeRule(_Rule):
    """Isolated samples far from the recent median (robust z-score): a noisy or failing sensor."""

    type: Literal["spike"]
    z: float = Field(8.0, gt=0, description="robust z-score (MAD) that counts as a spike")
    samples: int = Field(30, ge=5, description="history used for the median and MAD")
    count: int = Field(3, ge=1)
    within_s: float = Field(600.0, gt=0)
    min_scale: float = Field(0.0, ge=0, description="floor of the spread, in units (a very steady signal)")
    severity: SeverityName


RuleSpec = Annotated[
    LimitRule
    | GasRule
    | RateRule
    | DeviationRule
    | VoteRule
    | StaleRule
    | OfflineRule
    | InvalidRule
    | FlatlineRule
    | SpikeRule,
    Field(discriminator="type"),
]


class RuleSection(BaseModel):
    """The part of the plant file this package owns."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleSpec] = Field(default_factory=list)


# --- subjects -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointRow:
    """One point of the registry with its device, as selectors see it (ids are 0 when not applied yet)."""

    site: str
    area: str
    device: str
    device_kind: str
    key: str
    quantity: str
    unit: str
    kind: PointKind
    interval_s: float
    point_id: int = 0
    device_id: int = 0


def rows_from_plant(plant: PlantConfig) -> list[PointRow]:
    return [
        PointRow(
            s.code, a.code, d.code, d.kind, p.key, p.quantity, p.unit or "", p.kind or PointKind.GAUGE, d.interval_s
        )
        for s in plant.sites
        for a in s.areas
        for d in a.devices
        for p in d.points
    ]


def rows_from_index(index: PlantIndex) -> list[PointRow]:
    return [
        PointRow(d.site, d.area, d.code, d.kind, p.key, p.quantity, p.unit, p.kind, d.interval_s, p.id, d.id)
        for d in index.devices.values()
        for p in d.points.values()
    ]


def _matches(value: str, wanted: Names) -> bool:
    if wanted is None:
        return True
    patterns = [wanted] if isinstance(wanted, str) else wanted
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def selected(select: Select, rows: Iterable[PointRow]) -> list[PointRow]:
    return [
        r
        for r in rows
        if _matches(r.site, select.site)
        and _matches(r.area, select.area)
        and _matches(r.device, select.device)
        and _matches(r.device_kind, select.device_kind)
        and _matches(r.key, select.key)
        and _matches(r.quantity, select.quantity)
    ]


# --- checks against the registry ------------------------------------------------------------------------


def check_rules(section: RuleSection, plant: PlantConfig) -> list[tuple[tuple, str]]:
    """Problems a rule cannot see alone, as (location, message): unknown references, empty selections..."""
    rows = rows_from_plant(plant)
    problems: list[tuple[tuple, str]] = []
    ids = [r.id for r in section.rules]
    twice = {i for i, n in Counter(ids).items() if n > 1}
    by_id = {r.id: r for r in section.rules}
    for i, rule in enumerate(section.rules):
        loc = ("rules", i)
        if rule.id in twice:
            problems.append(((*loc, "id"), f"rule id {rule.id!r} appears twice"))
        chosen = selected(rule.select, rows)
        if not chosen:
            problems.append(
                (
                    (*loc, "select"),
                    f"rule {rule.id!r} selects no point of the plant (a typo here would leave a hazard unwatched)",
                )
            )
            continue
        if rule.per == "point":
            counters = sorted({f"{r.device}/{r.key}" for r in chosen if r.kind == PointKind.COUNTER})
            if counters:
                problems.append(
                    (
                        (*loc, "select"),
                        f"rule {rule.id!r} selects counters ({', '.join(counters[:3])}); limits apply to gauges",
                    )
                )
        if isinstance(rule, GasRule):
            wrong = sorted(
                {
                    f"{r.device}/{r.key} ({r.quantity}, {r.unit})"
                    for r in chosen
                    if r.quantity != rule.gas or r.unit not in ("ppm", "pct_lel")
                }
            )
            if wrong:
                problems.append(
                    (
                        (*loc, "select"),
                        f"gas rule {rule.id!r} ({rule.gas}) selects points that are "
                        f"not {rule.gas} in ppm or %LEL: {', '.join(wrong[:3])}",
                    )
                )
            if any(r.unit == "pct_lel" for r in chosen) and rule.gas not in LEL_PPM:
                problems.append(((*loc, "gas"), f"{rule.gas} has no LEL here to convert %LEL readings"))
        if isinstance(rule, VoteRule):
            for leaf in rule.expr.leaves():
                if leaf.rule is not None:
                    if leaf.rule not in by_id:
                        problems.append(((*loc, "expr"), f"vote {rule.id!r} refers to unknown rule {leaf.rule!r}"))
                    elif leaf.rule == rule.id or isinstance(by_id[leaf.rule], VoteRule):
                        problems.append(
                            ((*loc, "expr"), f"vote {rule.id!r} may refer only to non-vote rules, not {leaf.rule!r}")
                        )
                elif not any(_matches(r.key, leaf.key) and _matches(r.device_kind, leaf.device_kind) for r in chosen):
                    problems.append(((*loc, "expr"), f"vote {rule.id!r}: no point {leaf.key!r} among its selection"))
                elif leaf.per is not None and not any(
                    _matches(r.key, leaf.key) and any(o.device_id == r.device_id and o.key == leaf.per for o in chosen)
                    for r in chosen
                ):
                    problems.append(
                        (
                            (*loc, "expr"),
                            f"vote {rule.id!r}: no device with both {leaf.key!r} and {leaf.per!r} among its selection",
                        )
                    )
    return problems
