"""The catalogue of each site: waste types (with their list code and edition), storage facilities, settings.

It comes from the optional ``hazwaste:`` section of the plant file (``HazwasteSection``; plant files without it
stay valid) and/or from the API. Functions take a keyword-only ``conn`` and never commit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from core.db import execute
from core.errors import DomainError
from hazwaste import codes

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
FacilityCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)]
FacilityKind = Literal["warehouse", "yard", "pit", "tank_farm", "storage_point", "generation", "own_treatment"]
STORAGE_KINDS = frozenset({"warehouse", "yard", "pit", "tank_farm", "storage_point"})


class HazwasteError(DomainError):
    """A refused hazardous-waste operation; ``status`` is the HTTP answer (404, 409, 422)."""

    status = 409

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class WasteTypeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: str = Field(min_length=1, max_length=200, description="trade or internal name")
    list_name: str | None = Field(None, description="the name in the list; defaults to the list's description")
    edition: Literal[2021, 2025] = 2021
    waste_code: str = Field(pattern=r"^\d{3}-\d{3}-\d{2}$", description="e.g. 900-041-49")
    hazards: list[Literal["T", "C", "I", "R", "In"]] | None = Field(None, description="defaults to the list's")
    form: Literal["solid", "semi_solid", "liquid", "gas"] = "solid"
    constituents: str = ""
    precautions: str = ""
    incompatible_with: list[Code] = Field(default_factory=list, description="waste types never stored with it")
    processes: list[str] = Field(default_factory=list, description="generating processes")
    _edition_named: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _listed(self) -> WasteTypeSpec:
        self._edition_named = "edition" in self.model_fields_set
        entry = codes.lookup(self.waste_code, self.edition)
        if entry is None and not self._edition_named:
            # no edition named: any edition that lists the code, the site's edition decides (HazwasteSite)
            for edition in codes.EDITIONS:
                entry = codes.lookup(self.waste_code, edition)
                if entry is not None:
                    self.edition = edition  # type: ignore[assignment]
                    break
        if entry is None:
            raise ValueError(
                f"{self.waste_code} is not in the {self.edition} list (as far as this catalogue "
                f"knows it: hazwaste/codes.py)"
            )
        self.list_name = self.list_name or entry.description
        self.hazards = self.hazards or list(entry.hazards)
        return self


class FacilitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: FacilityCode
    name: str = Field(min_length=1, max_length=200)
    kind: FacilityKind
    capacity_kg: float | None = Field(None, gt=0)
    area: Code | None = Field(None, description="area code of the plant")


class HazwasteSite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Code
    edition: Literal[2021, 2025] | None = Field(
        None,
        description="the edition of the National Hazardous Waste List the site uses; its waste types take it "
        "unless they name one, and each code must be in it (hazwaste.codes.switch_edition names what a switch "
        "changes)",
    )
    storage_limit_days: int = Field(365, gt=0, description="Solid Waste Law Art. 81: at most one year")
    warn_days: list[int] = Field(default_factory=lambda: [270, 330])
    unit_class: Literal["key", "simplified", "registration"] = "key"
    producer_name: str | None = None
    producer_contact: str | None = None
    waste_types: list[WasteTypeSpec] = Field(default_factory=list)
    facilities: list[FacilitySpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> HazwasteSite:
        if self.edition is not None:
            problems = []
            for w in self.waste_types:
                if w._edition_named and w.edition != self.edition:
                    problems.append(f"waste type {w.code!r} names the {w.edition} list, the site uses {self.edition}")
                    continue
                found = (
                    codes.switch_edition([w.waste_code], w.edition, self.edition) if w.edition != self.edition else []
                )
                if found:
                    problems.append(f"waste type {w.code!r}: {found[0].message}")
                    continue
                if w.edition != self.edition:
                    old, entry = codes.lookup(w.waste_code, w.edition), codes.lookup(w.waste_code, self.edition)
                    if old is not None and entry is not None and w.list_name == old.description:
                        w.list_name = entry.description
                    w.edition = self.edition
            if problems:
                raise ValueError("; ".join(problems))
        known = {w.code for w in self.waste_types}
        for w in self.waste_types:
            unknown = set(w.incompatible_with) - known
            if unknown:
                raise ValueError(f"waste type {w.code!r}: incompatible_with names unknown types {sorted(unknown)}")
        return self


class HazwasteSection(BaseModel):
    """The optional ``hazwaste:`` section of a plant file."""

    hazwaste: list[HazwasteSite] = Field(default_factory=list)


def check_hazwaste(section: HazwasteSection, plant: Any) -> list[tuple[tuple, str]]:
    """Cross-references to the registry part of the plant file: sites and area codes exist."""
    areas = {site.code: {a.code for a in site.areas} for site in plant.sites}
    problems: list[tuple[tuple, str]] = []
    for i, item in enumerate(section.hazwaste):
        if item.site not in areas:
            problems.append((("hazwaste", i, "site"), f"no site {item.site!r} in the plant file"))
            continue
        for j, fac in enumerate(item.facilities):
            if fac.area is not None and fac.area not in areas[item.site]:
                problems.append(
                    (("hazwaste", i, "facilities", j, "area"), f"no area {fac.area!r} in site {item.site!r}")
                )
    return problems


def _site_id(conn: psycopg.Connection, site: str) -> int:
    row = execute(conn, "SELECT id FROM site WHERE code = %s", (site,)).fetchone()
    if row is None:
        raise HazwasteError(f"no site {site!r}", 404)
    return row[0]


def put_waste_type(*, conn: psycopg.Connection, site_id: int, spec: WasteTypeSpec) -> int:
    """Create or update a waste type of a site; return its id."""
    entry = codes.lookup(spec.waste_code, spec.edition)
    assert entry is not None  # the spec validated it
    return execute(
        conn,
        """INSERT INTO hw_waste_type (site_id, code, name, list_name, list_edition, waste_code, category, hazards,
                                      form, constituents, precautions, incompatible_with, processes)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (site_id, code) DO UPDATE SET name = excluded.name, list_name = excluded.list_name,
               list_edition = excluded.list_edition, waste_code = excluded.waste_code, category = excluded.category,
               hazards = excluded.hazards, form = excluded.form, constituents = excluded.constituents,
               precautions = excluded.precautions, incompatible_with = excluded.incompatible_with,
               processes = excluded.processes, retired_at = NULL, updated_at = now()
           RETURNING id""",
        (
            site_id,
            spec.code,
            spec.name,
            spec.list_name,
            spec.edition,
            spec.waste_code,
            entry.category,
            spec.hazards,
            spec.form,
            spec.constituents,
            spec.precautions,
            spec.incompatible_with,
            spec.processes,
        ),
    ).fetchone()[0]


def put_facility(*, conn: psycopg.Connection, site_id: int, spec: FacilitySpec) -> int:
    """Create or update a facility of a site; return its id."""
    return execute(
        conn,
        """INSERT INTO hw_facility (site_id, code, name, kind, capacity_kg, area) VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (site_id, code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
               capacity_kg = excluded.capacity_kg, area = excluded.area, retired_at = NULL, updated_at = now()
           RETURNING id""",
        (site_id, spec.code, spec.name, spec.kind, spec.capacity_kg, spec.area),
    ).fetchone()[0]


def apply_section(*, conn: psycopg.Connection, section: HazwasteSection) -> dict[str, int]:
    """Make the catalogue match the plant file's section (idempotent); types and facilities it drops retire."""
    counts = {"waste_types": 0, "facilities": 0}
    for item in section.hazwaste:
        site_id = _site_id(conn, item.site)
        execute(
            conn,
            """INSERT INTO hw_site_setting (site_id, storage_limit_days, warn_days, unit_class, producer_name,
                                            producer_contact) VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (site_id) DO UPDATE SET storage_limit_days = excluded.storage_limit_days,
                   warn_days = excluded.warn_days, unit_class = excluded.unit_class,
                   producer_name = excluded.producer_name, producer_contact = excluded.producer_contact,
                   updated_at = now()""",
            (
                site_id,
                item.storage_limit_days,
                item.warn_days,
                item.unit_class,
                item.producer_name,
                item.producer_contact,
            ),
        )
        for spec in item.waste_types:
            put_waste_type(conn=conn, site_id=site_id, spec=spec)
            counts["waste_types"] += 1
        for fac in item.facilities:
            put_facility(conn=conn, site_id=site_id, spec=fac)
            counts["facilities"] += 1
        execute(
            conn,
            "UPDATE hw_waste_type SET retired_at = now() WHERE site_id = %s AND retired_at IS NULL "
            "AND NOT code = ANY(%s)",
            (site_id, [w.code for w in item.waste_types]),
        )
        execute(
            conn,
            "UPDATE hw_facility SET retired_at = now() WHERE site_id = %s AND retired_at IS NULL "
            "AND NOT code = ANY(%s)",
            (site_id, [f.code for f in item.facilities]),
        )
    return counts


def site_setting(*, conn: psycopg.Connection, site_id: int) -> dict[str, Any]:
    """The site's hazardous-waste settings (the defaults when none were applied)."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute("SELECT * FROM hw_site_setting WHERE site_id = %s", (site_id,))
        .fetchone()
    )
    return row or {
        "site_id": site_id,
        "storage_limit_days": 365,
        "warn_days": [270, 330],
        "unit_class": "key",
        "producer_name": None,
        "producer_contact": None,
    }


def list_waste_types(*, conn: psycopg.Connection, site_ids: list[int] | None) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT w.*, s.code AS site FROM hw_waste_type w JOIN site s ON s.id = w.site_id
           WHERE w.retired_at IS NULL AND (%(sites)s::int[] IS NULL OR w.site_id = ANY(%(sites)s)) ORDER BY w.id""",
            {"sites": site_ids},
        )
        .fetchall()
    )


def list_facilities(*, conn: psycopg.Connection, site_ids: list[int] | None) -> list[dict[str, Any]]:
    """Facilities with their current fill (the weight of the containers in them) in kg."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT f.*, s.code AS site, coalesce(sum(c.weight_kg), 0) AS fill_kg, count(c.id) AS containers
           FROM hw_facility f JOIN site s ON s.id = f.site_id
           LEFT JOIN hw_container c ON c.facility_id = f.id AND c.stage = 'storage_in'
           WHERE f.retired_at IS NULL AND (%(sites)s::int[] IS NULL OR f.site_id = ANY(%(sites)s))
           GROUP BY f.id, s.code ORDER BY f.id""",
            {"sites": site_ids},
        )
        .fetchall()
    )


def waste_type_id(*, conn: psycopg.Connection, site_id: int, code: str, active_only: bool = False) -> int | None:
    """The id of a site's waste type by code (``active_only``: not retired), None when there is none."""
    row = execute(
        conn,
        "SELECT id FROM hw_waste_type WHERE site_id = %s AND code = %s AND (NOT %s OR retired_at IS NULL)",
        (site_id, code, active_only),
    ).fetchone()
    return None if row is None else row[0]
