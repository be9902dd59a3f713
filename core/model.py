"""The shared vocabulary: readings, findings, severities, process types, media.

These types are the contract between ingest, detectors and alerts (STYLE.md B2): siblings exchange them and
nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple


class Quality(IntEnum):
    """Quality of one reading (stored as smallint)."""

    GOOD = 0
    UNCERTAIN = 1
    #: The device sent ``null``: it has no valid value (sensor fault, warming up).
    BAD = 2


class PointKind(StrEnum):
    GAUGE = "gauge"  # an instantaneous value (temperature, concentration)
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


class Reading(NamedTuple):
    """One value of one point at one time, as it travels from the decoders to the database and the detectors.

    A named tuple, so that it unpacks and indexes as the ``(ts, point_id, value, quality)`` rows always did and
    goes into ``COPY`` and ``executemany`` unchanged; the field order is the ``reading`` table's column order
    (ingest.writer) and is part of the spool format. ``quality`` is a plain int (a ``Quality`` value).
    """

    ts: datetime
    point_id: int
    value: float | None
    quality: int = 0


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


#: The keys of ``Finding.details`` that the alarm engine reads, each a field of ``FindingDetails``.
DETAIL_KEYS = (
    "finding_id",
    "previous",
    "level",
    "type",
    "rule_revision",
    "name",
    "name_en",
    "detector_version",
    "model_id",
    "contributors",
    "drill",
    "plan",
    "commands",
)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the ingest stage decided for a finding before any database work: the response plan levels it
    started (``{"plan": "site/area", "level", "name", "name_en"}``) and their interlock commands (records of
    alerts.plans, ``pending``, ``issued`` with their signed payload, or ``skipped``)."""

    plan: tuple[Mapping[str, Any], ...] = ()
    commands: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class FindingDetails(Mapping[str, Any]):
    """The details of a finding, typed: who wrote each key and what it means.

    ``finding_id`` (every producer), ``previous`` (severity before this change: a plan level starts on an edge),
    ``level`` (the label of the threshold held), ``type`` (rule type, ``system``, ``drill``...),
    ``rule_revision``, ``name``/``name_en`` (the alarm's title), ``detector_version`` (detectors.engine);
    ``model_id``/``contributors`` (ML scoring); ``drill``; ``plan``/``commands``: the ingest stage's
    ``Decision`` (absent: no stage decided, the alarm engine decides). Keys of other domains (a pollutant, an
    outfall...) are kept in ``extra``. It reads as the mapping it was made from (``given`` keeps which keys
    were given, in order), so spool files and dead letters keep their JSON shape (``as_dict``).
    """

    finding_id: str | None = None
    previous: int | None = None
    level: str | None = None
    type: str | None = None
    rule_revision: int | None = None
    name: str | None = None
    name_en: str | None = None
    detector_version: str | None = None
    model_id: Any = None
    contributors: Any = None
    drill: bool | None = None
    plan: list[Mapping[str, Any]] | None = None
    commands: list[dict[str, Any]] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    given: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> FindingDetails:
        if isinstance(data, FindingDetails):
            return data
        data = dict(data or {})
        known = {k: v for k, v in data.items() if k in DETAIL_KEYS}
        return cls(**known, extra={k: v for k, v in data.items() if k not in DETAIL_KEYS}, given=tuple(data))

    def as_dict(self) -> dict[str, Any]:
        """The mapping this was made from (the JSON shape)."""
        return {key: self[key] for key in self.given}

    @property
    def decision(self) -> Decision | None:
        """The ingest stage's decision, or None when no stage decided (``plan`` absent)."""
        if "plan" not in self.given:
            return None
        return Decision(tuple(self.plan or ()), tuple(self.commands or ()))

    def decided(self, decision: Decision) -> FindingDetails:
        """These details with the ingest stage's decision noted."""
        return FindingDetails.of({**self.as_dict(), "plan": list(decision.plan), "commands": list(decision.commands)})

    def __getitem__(self, key: str) -> Any:
        if key not in self.given:
            raise KeyError(key)
        return getattr(self, key) if key in DETAIL_KEYS else self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)


@dataclass(frozen=True, slots=True)
class Finding:
    """A change of a detector's classified severity for one subject (edge-triggered, STYLE.md B4)."""

    rule: str  # id of the configured rule or model
    detector: str  # detector key, e.g. ``high_limit``
    subject: SubjectRef
    severity: Severity
    ts: datetime
    score: float | None = None
    value: float | None = None
    message: str = ""
    caused_by: str | None = None  # id of the reading batch that caused it
    #: Typed details; producers may pass a plain mapping, which is converted (FindingDetails.of).
    details: FindingDetails = field(default_factory=FindingDetails)

    def __post_init__(self) -> None:
        if not isinstance(self.details, FindingDetails):
            object.__setattr__(self, "details", FindingDetails.of(self.details))
