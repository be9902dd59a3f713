"""Discharge limits as versioned data: the standards' tables (``compliance/standards/*.yaml``) and the permit.

Each standard file is one version of one standard's table (a new edition or a corrected value is a new file with
a later ``valid_from`` or a higher ``version``, never an edit of history). The limits of an outfall at a time are
those of the newest version of each standard it applies, for its medium and discharge regime, with the permit's
limits replacing the standard's for the same pollutant and averaging (domain/standards.md 3).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

STANDARDS_DIR = Path(__file__).parent / "standards"


class Averaging(StrEnum):
    SINGLE = "single"  # every valid reading
    HOUR = "hour"  # hourly mean of valid data
    DAY = "day"  # daily mean of valid data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Model):
    """A limit of one pollutant (HJ 212 factor code) for one averaging; ``min`` and ``max`` in its unit."""

    pollutant: str = Field(pattern=r"^[a-zA-Z0-9]{2,7}$")
    name: str = ""
    min: float | None = None
    max: float | None = None
    averaging: Averaging = Averaging.HOUR

    @model_validator(mode="after")
    def _bounds(self) -> Limit:
        if self.min is None and self.max is None:
            raise ValueError("a limit needs min, max or both")
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError("min must be below max")
        return self

    def score(self, value: float) -> float:
        """Higher is worse, 1.0 at the limit (STYLE.md B4): value/max above, min/value below a lower bound."""
        scores = []
        if self.max is not None and self.max > 0:
            scores.append(value / self.max)
        if self.min is not None:
            scores.append(self.min / value if value > 0 else float("inf"))
        return max(scores)

    def exceeded(self, value: float) -> bool:
        return (self.max is not None and value > self.max) or (self.min is not None and value < self.min)


class StandardLimit(Limit):
    medium: str = Field(pattern=r"^(water|air)$")
    regime: str


class LimitSet(_Model):
    """One version of one standard's limit table."""

    standard: str
    title: str = ""
    version: int = Field(ge=1)
    valid_from: date
    confirmed: bool = False
    limits: list[StandardLimit]
    benchmark_drainage_m3_per_10k_ah: dict[str, float] = Field(default_factory=dict)


def load_standards(directory: Path = STANDARDS_DIR) -> list[LimitSet]:
    return [
        LimitSet.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*.yaml"))
    ]


def current(sets: list[LimitSet], standard: str, at: date) -> LimitSet | None:
    """The version of ``standard`` in force at ``at`` (latest valid_from, then highest version)."""
    candidates = [s for s in sets if s.standard == standard and s.valid_from <= at]
    return max(candidates, key=lambda s: (s.valid_from, s.version), default=None)


def effective_limits(
    sets: list[LimitSet], *, standards: list[str], medium: str, regime: str, at: date, permit: list[Limit] = ()
) -> dict[tuple[str, Averaging], tuple[Limit, str]]:
    """(pollutant, averaging) -> (limit, where it comes from) for an outfall at ``at``; the permit wins."""
    out: dict[tuple[str, Averaging], tuple[Limit, str]] = {}
    for name in standards:
        table = current(sets, name, at)
        if table is None:
            continue
        for item in table.limits:
            if item.medium == medium and item.regime == regime:
                out[(item.pollutant, item.averaging)] = (item, f"{table.standard} v{table.version}")
    for item in permit:
        out[(item.pollutant, item.averaging)] = (item, "permit")
    return out
