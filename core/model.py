"""The shared vocabulary: readings, findings, severities, process types, media.

These types are the contract between ingest, detectors and alerts (STYLE.md B2): siblings exchange them and
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any


class Quality(IntEnum):
    """Quality of one reading (stored as smallint)."""

    GOOD = 0
    UNCERTAIN = 1
    #: The device sent ``null``: it has no valid value (sensor fault, warming up).
    BAD = 2


class PointKind(StrEnum):
    GAUGE = "gauge"      # an instantaneous value (temperature, concentration)
    COUNTER = "counter"  # a register that only increases, except on reset/rollover (energy, volume)


class ProcessType(StrEnum):
    """Process areas of a lithium-ion cell and pack factory (ARCHITECTURE.md, seeds-summary section 1)."""

    MIXING = "mixing"
    COATING = "coating"
    DRYING = "drying"
    ROLLING = "rolling"
    SLITTING = "slitting"
    WINDING_STACKING = "winding_stacking"
    WELDING = "welding"
    BAKING = "baking"
    INJECTION = "injection"
    FORMATION = "formation"
    GRADING = "grading"
    AGING = "aging"
    PACK = "pack"
    WAREHOUSE = "warehouse"
    ELECTROLYTE_STORE = "electrolyte_store"
    HAZWASTE_STORE = "hazwaste_store"
    WASTEWATER = "wastewater"
    VOC_INCINERATOR = "voc_incinerator"
    UTILITIES = "utilities"


class Medium(StrEnum):
    """What a meter measures."""

    ELECTRICITY = "electricity"
    WATER = "water"
    COMPRESSED_AIR = "compressed_air"
    NITROGEN = "nitrogen"
    STEAM = "steam"
    NATURAL_GAS = "natural_gas"


class Severity(IntEnum):
    """Classified severity of a finding; the alarm priority follows it (four priorities, ISA-18.2)."""

    NORMAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one point at one time."""

    point_id: int
    ts: datetime
    value: float | None
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """What a finding is about: a point, a device or an area of a site (codes from the plant config)."""

    site: str
    area: str | None = None
    device: str | None = None
    point: str | None = None

    @property
    def key(self) -> str:
        """Stable text key of the subject, used for one-open-alarm-per-(rule, source)."""
        return "/".join(part for part in (self.site, self.area, self.device, self.point) if part)


@dataclass(frozen=True, slots=True)
class Finding:
    """A change of a detector's classified severity for one subject (edge-triggered, STYLE.md B4)."""

    rule: str                 # id of the configured rule or model
    detector: str             # detector key, e.g. ``high_limit``
    subject: SubjectRef
    severity: Severity
    ts: datetime
    score: float | None = None
    value: float | None = None
    message: str = ""
    caused_by: str | None = None   # id of the reading batch that caused it
    details: dict[str, Any] = field(default_factory=dict)
