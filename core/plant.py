"""The plant configuration: schema (pydantic), validation with line numbers, idempotent apply, export.

The YAML file describes sites, their process areas, the devices in each area with their points, and the
meter tree. ``apply_plant`` makes the registry tables match the file (creating, updating, and retiring what
the file no longer lists) inside the caller's transaction, and records a ``config_revision`` when anything
changed; applying the same file twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.catalog import QUANTITIES, unit_of_key
from core.db import execute
from core.formula import FormulaError
from core.formula import parse as parse_formula
from core.model import Medium, PointKind, ProcessType
from core.yamlconf import load_model, raise_problems, read_yaml

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]

#: Quantities a meter of each medium may read (a meter reads a counter point).
METER_QUANTITIES: dict[Medium, set[str]] = {
    Medium.ELECTRICITY: {"energy"},
    Medium.WATER: {"volume", "mass"},
    Medium.COMPRESSED_AIR: {"volume"},
    Medium.NITROGEN: {"volume"},
    Medium.STEAM: {"mass"},  # energy ledgers and GB/T 2589 coefficients count steam in t
    Medium.NATURAL_GAS: {"volume"},
}


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointConfig(_Item):
    key: Key = Field(description="Point key with its unit as suffix, e.g. voc_ppm")
    name: Name
    name_en: Name | None = None
    quantity: str
    unit: str | None = Field(None, description="Defaults to the key's unit suffix")
    kind: PointKind | None = Field(None, description="Defaults to the quantity's kind")
    range: tuple[float, float] | None = Field(None, description="Valid (instrument) range [min, max]")
    nominal: float | None = Field(None, description="Typical value; for counters the typical increase per hour")

    @model_validator(mode="after")
    def _complete(self) -> PointConfig:
        spec = QUANTITIES.get(self.quantity)
        if spec is None:
            raise ValueError(f"unknown quantity {self.quantity!r}; known: {', '.join(sorted(QUANTITIES))}")
        suffix = unit_of_key(self.key)
        unit = self.unit or suffix
        if unit not in spec.units:
            raise ValueError(
                f"unit {unit!r} does not fit quantity {self.quantity!r} (allowed: "
                f"{', '.join(spec.units)}); end the key with the unit, e.g. {self.quantity}_"
                f"{spec.units[0]}"
            )
        if suffix != unit:
            raise ValueError(f"key {self.key!r} must end with its unit '_{unit}' (STYLE.md B7)")
        self.unit = unit
        self.kind = self.kind or spec.kind
        lo, hi = self.range or (spec.valid_min, spec.valid_max)
        if not lo < hi:
            raise ValueError(f"range [{lo}, {hi}] is empty: the minimum must be below the maximum")
        self.range = (lo, hi)
        if self.nominal is not None and self.kind == PointKind.GAUGE and not lo <= self.nominal <= hi:
            raise ValueError(f"nominal {self.nominal} lies outside the range [{lo}, {hi}]")
        return self


#: HJ 212 data commands whose CP items become readings, and the command a field suffix implies.
HJ212_DATA_CNS = ("2011", "2021", "2031", "2041", "2051", "2061")
_HJ212_CN_OF_SUFFIX = {"Rtd": "2011", "ZsRtd": "2011", "RS": "2021", "RT": "2041"}


class Hj212FieldConfig(_Item):
    field: str = Field(pattern=r"^[A-Za-z0-9_]+-[A-Za-z]+$", description="CP item, e.g. w01018-Avg or SB1-RS")
    cn: str | None = Field(
        None,
        description="Data command (2011 real-time, 2051 minute, 2061 hour, 2031 day, "
        "2021 equipment state, 2041 run time); implied by -Rtd, -RS and -RT",
    )
    point: Key = Field(description="Point key of this device that stores the item")

    @model_validator(mode="after")
    def _command(self) -> Hj212FieldConfig:
        self.cn = self.cn or _HJ212_CN_OF_SUFFIX.get(self.field.rpartition("-")[2])
        if self.cn is None:
            raise ValueError(f"give the data command (cn) of {self.field!r}: one of {', '.join(HJ212_DATA_CNS)}")
        if self.cn not in HJ212_DATA_CNS:
            raise ValueError(f"cn {self.cn!r} is not a data command ({', '.join(HJ212_DATA_CNS)})")
        return self


class Hj212Config(_Item):
    """This device is an HJ 212 data logger (数采仪): its MN, password and which CP items go to which point."""

    mn: str = Field(pattern=r"^[0-9A-Za-z]{1,24}$", description="Logger id (MN)")
    password: str = Field(pattern=r"^[!-~]{0,6}$", description="Access password (PW, up to 6 characters)")
    st: str | None = Field(None, pattern=r"^[0-9A-Z][0-9]$", description="Expected system code, e.g. 32 or 31")
    fields: list[Hj212FieldConfig] = Field(min_length=1)


class DeviceConfig(_Item):
    code: Code
    name: Name
    name_en: Name | None = None
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    interval_s: float = Field(10.0, gt=0, description="Expected publishing interval in seconds")
    points: list[PointConfig] = Field(min_length=1)
    hj212: Hj212Config | None = None


class AreaConfig(_Item):
    code: Code
    name: Name
    name_en: Name | None = None
    process: ProcessType
    devices: list[DeviceConfig] = Field(default_factory=list)
    production: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$")]] = Field(
        default_factory=list,
        description="Output counters of this area (device/point_key of quantity output: "
        "cells, packs, pcs, ah), for energy per unit of output",
    )


class MeterConfig(_Item):
    code: Code
    name: Name
    name_en: Name | None = None
    medium: Medium
    point: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$", description="device/point_key")
    formula: str | None = Field(
        None,
        max_length=2000,
        description="Virtual meter: sums and differences of meters of the site, e.g. 'e-main - e-coating - e-drying'",
    )
    parent: Code | None = None
    area: Code | None = None
    loss_limit_pct: float | None = Field(
        None,
        gt=0,
        le=100,
        description="Balance: a finding when this parent's "
        "loss (parent - sum of its sub-meters) stays above this percentage",
    )
    loss_hold_minutes: int | None = Field(
        None, ge=15, le=7 * 24 * 60, description="... for this long (default 60 minutes)"
    )

    @model_validator(mode="after")
    def _point_or_formula(self) -> MeterConfig:
        if (self.point is None) == (self.formula is None):
            raise ValueError(
                "a meter reads a counter point or is virtual with a formula: give exactly one of point and formula"
            )
        if self.formula is not None:
            try:
                parse_formula(self.formula)
            except FormulaError as exc:
                raise ValueError(f"formula: {exc}") from None
            if self.parent is not None:
                raise ValueError("a virtual meter has no parent (it is not part of the metered tree)")
            if self.loss_limit_pct is not None:
                raise ValueError("a virtual meter has no sub-meters to balance (loss_limit_pct)")
        if self.loss_limit_pct is not None and self.loss_hold_minutes is None:
            self.loss_hold_minutes = 60
        return self


class SiteConfig(_Item):
    code: Code
    name: Name
    name_en: Name | None = None
    timezone: str = "Asia/Shanghai"
    areas: list[AreaConfig] = Field(default_factory=list)
    meters: list[MeterConfig] = Field(default_factory=list)


class PlantConfig(BaseModel):
    """The registry part of a plant configuration file. Other packages add their own sections."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1, description="Schema version of this file")
    #: Sibling files holding the sections other packages own (rules, response plans...), relative to this file;
    #: read by the composition root (``cli.plantfile``), not by the registry.
    include: list[str] = Field(default_factory=list)
    sites: list[SiteConfig] = Field(min_length=1)


def _duplicates(values: list[str]) -> set[str]:
    return {value for value, count in Counter(values).items() if count > 1}


def check_references(plant: PlantConfig) -> list[tuple[tuple, str]]:
    """Cross-reference checks that one item cannot make alone; returns (location, message) pairs."""
    problems: list[tuple[tuple, str]] = []
    loggers: dict[str, str] = {}
    for s, site in enumerate(plant.sites):
        where = ("sites", s)
        areas = [a.code for a in site.areas]
        devices: dict[str, DeviceConfig] = {}
        for a, area in enumerate(site.areas):
            if area.code in _duplicates(areas):
                problems.append(((*where, "areas", a, "code"), f"area code {area.code!r} appears twice"))
            for d, device in enumerate(area.devices):
                if device.code in devices:
                    problems.append(
                        (
                            (*where, "areas", a, "devices", d, "code"),
                            f"device code {device.code!r} appears twice in site {site.code!r}",
                        )
                    )
                devices[device.code] = device
                keys = [p.key for p in device.points]
                if device.hj212 is not None:
                    problems += _check_hj212((*where, "areas", a, "devices", d, "hj212"), device, set(keys), loggers)
                for p, point in enumerate(device.points):
                    if point.key in _duplicates(keys):
                        problems.append(
                            (
                                (*where, "areas", a, "devices", d, "points", p, "key"),
                                f"point key {point.key!r} appears twice on device {device.code!r}",
                            )
                        )
        for a, area in enumerate(site.areas):
            for i, ref in enumerate(area.production):
                device_code, key = ref.split("/")
                point = (
                    next((p for p in devices[device_code].points if p.key == key), None)
                    if device_code in devices
                    else None
                )
                if point is None or point.quantity != "output":
                    problems.append(
                        (
                            (*where, "areas", a, "production", i),
                            f"no output counter {ref!r} in site {site.code!r} (a point of quantity output)",
                        )
                    )
        meters = {m.code: m for m in site.meters}
        parents = {m.parent for m in site.meters if m.parent}
        for m, meter in enumerate(site.meters):
            loc = (*where, "meters", m)
            if meter.loss_limit_pct is not None and meter.formula is None and meter.code not in parents:
                problems.append(((*loc, "loss_limit_pct"), f"meter {meter.code!r} has no sub-meters to balance"))
            if meter.code in _duplicates([x.code for x in site.meters]):
                problems.append(((*loc, "code"), f"meter code {meter.code!r} appears twice"))
            if meter.formula is not None:
                for _factor, code in parse_formula(meter.formula):
                    if code not in meters:
                        problems.append(((*loc, "formula"), f"no meter {code!r} in site {site.code!r}"))
                    elif meters[code].formula is not None:
                        problems.append(
                            ((*loc, "formula"), f"{code!r} is virtual too; formulas name counter meters only")
                        )
                    elif meters[code].medium != meter.medium:
                        problems.append(
                            ((*loc, "formula"), f"{code!r} meters {meters[code].medium}, not {meter.medium}")
                        )
                if meter.area is not None and meter.area not in areas:
                    problems.append(((*loc, "area"), f"no area {meter.area!r} in site {site.code!r}"))
                continue
            device_code, key = meter.point.split("/")
            point = (
                next((p for p in devices[device_code].points if p.key == key), None) if device_code in devices else None
            )
            if point is None:
                problems.append(((*loc, "point"), f"no point {meter.point!r} in site {site.code!r}"))
            elif point.kind != PointKind.COUNTER or point.quantity not in METER_QUANTITIES[meter.medium]:
                problems.append(
                    (
                        (*loc, "point"),
                        f"a {meter.medium} meter must read a counter of "
                        f"{' or '.join(sorted(METER_QUANTITIES[meter.medium]))}, "
                        f"not {point.kind} {point.quantity}",
                    )
                )
            if meter.area is not None and meter.area not in areas:
                problems.append(((*loc, "area"), f"no area {meter.area!r} in site {site.code!r}"))
            if meter.parent is not None:
                if meter.parent not in meters:
                    problems.append(((*loc, "parent"), f"no meter {meter.parent!r} in site {site.code!r}"))
                elif meters[meter.parent].formula is not None:
                    problems.append(((*loc, "parent"), f"parent {meter.parent!r} is a virtual meter"))
                elif meters[meter.parent].medium != meter.medium:
                    problems.append(
                        (
                            (*loc, "parent"),
                            f"parent {meter.parent!r} meters {meters[meter.parent].medium}, not {meter.medium}",
                        )
                    )
                seen, cursor = {meter.code}, meters.get(meter.parent)
                while cursor is not None:
                    if cursor.code in seen:
                        problems.append(((*loc, "parent"), f"meter tree has a cycle through {meter.code!r}"))
                        break
                    seen.add(cursor.code)
                    cursor = meters.get(cursor.parent) if cursor.parent else None
    return problems


def _check_hj212(where: tuple, device: DeviceConfig, keys: set[str], loggers: dict[str, str]) -> list:
    assert device.hj212 is not None
    problems = []
    if device.hj212.mn in loggers:
        problems.append(((*where, "mn"), f"MN {device.hj212.mn!r} is also the MN of {loggers[device.hj212.mn]}"))
    loggers[device.hj212.mn] = f"device {device.code!r}"
    seen: set[tuple[str | None, str]] = set()
    for f, item in enumerate(device.hj212.fields):
        if item.point not in keys:
            problems.append(((*where, "fields", f, "point"), f"no point {item.point!r} on device {device.code!r}"))
        if (item.cn, item.field) in seen:
            problems.append(((*where, "fields", f, "field"), f"{item.field} of CN {item.cn} is mapped twice"))
        seen.add((item.cn, item.field))
    return problems


def load_plant(path: str | Path, model: type[PlantConfig] = PlantConfig) -> PlantConfig:
    """Read and validate a plant file; raise ``ConfigError`` naming file, line and field."""
    data, lines = read_yaml(path)
    plant = load_model(path, model, data, lines)
    raise_problems(path, lines, check_references(plant))
    return plant


# --- apply ------------------------------------------------------------------------------------------------


@dataclass
class ApplySummary:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    retired: Counter = field(default_factory=Counter)
    revision: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.retired)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"created": dict(self.created), "updated": dict(self.updated), "retired": dict(self.retired)}


def _sync(
    conn: psycopg.Connection,
    summary: ApplySummary,
    table: str,
    scope: dict[str, Any],
    wanted: dict[str, dict[str, Any]],
    *,
    key_col: str = "code",
    retire: bool = True,
    created: set[str] | None = None,
) -> dict[str, int]:
    """Make the rows of ``table`` within ``scope`` equal ``wanted`` (keyed by ``key_col``).

    Returns the id of every wanted row; adds the keys of new rows to ``created``. Unchanged rows are not
    touched, so re-applying is a no-op; rows no longer wanted are retired (never deleted).
    """
    where = " AND ".join(f"{col} = %({col})s" for col in scope)
    cur = execute(conn, f"SELECT * FROM {table} WHERE {where}", scope)  # noqa: S608 - fixed names
    cols = [d.name for d in cur.description]
    existing = {row[cols.index(key_col)]: dict(zip(cols, row, strict=True)) for row in cur.fetchall()}
    ids: dict[str, int] = {}
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            params = {**scope, key_col: key, **values}
            names = ", ".join(params)
            placeholders = ", ".join(f"%({n})s" for n in params)
            ids[key] = execute(
                conn,
                f"INSERT INTO {table} ({names}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
                params,
            ).fetchone()[0]
            summary.created[table] += 1
            if created is not None:
                created.add(key)
            continue
        ids[key] = row["id"]
        changes = {col: val for col, val in values.items() if row[col] != val}
        if row.get("retired_at") is not None:
            changes["retired_at"] = None
        if changes:
            sets = ", ".join(f"{col} = %({col})s" for col in changes)
            execute(
                conn,
                f"UPDATE {table} SET {sets}, updated_at = now() WHERE id = %(id)s",  # noqa: S608
                {**changes, "id": row["id"]},
            )
            summary.updated[table] += 1
    if retire:
        for key, row in existing.items():
            if key not in wanted and row["retired_at"] is None:
                execute(
                    conn,
                    f"UPDATE {table} SET retired_at = now(), updated_at = now() WHERE id = %s",  # noqa: S608
                    (row["id"],),
                )
                summary.retired[table] += 1
    return ids


def _apply_hj212(
    conn: psycopg.Connection,
    summary: ApplySummary,
    site: SiteConfig,
    device_ids: dict[str, int],
    point_ids: dict[str, int],
) -> None:
    """Make the HJ 212 loggers of this site's devices match the file (retire those no longer listed first)."""
    wanted = {device_ids[d.code]: d for a in site.areas for d in a.devices if d.hj212 is not None}
    existing = {
        row[0]: row[1:]
        for row in execute(
            conn,
            """
        SELECT l.device_id, l.mn, l.password, l.st, l.retired_at FROM hj212_logger l
        WHERE l.device_id = ANY(%s)""",
            (list(device_ids.values()),),
        ).fetchall()
    }
    for device_id, (_mn, _pw, _st, retired_at) in existing.items():
        if device_id not in wanted and retired_at is None:
            execute(
                conn,
                "UPDATE hj212_logger SET retired_at = now(), updated_at = now() WHERE device_id = %s",
                (device_id,),
            )
            summary.retired["hj212_logger"] += 1
    for device_id, device in wanted.items():
        cfg = device.hj212
        assert cfg is not None
        row = existing.get(device_id)
        if row is None:
            execute(
                conn,
                "INSERT INTO hj212_logger (device_id, mn, password, st) VALUES (%s, %s, %s, %s)",
                (device_id, cfg.mn, cfg.password, cfg.st),
            )
            summary.created["hj212_logger"] += 1
        elif row != (cfg.mn, cfg.password, cfg.st, None):
            execute(
                conn,
                "UPDATE hj212_logger SET mn = %s, password = %s, st = %s, retired_at = NULL, "
                "updated_at = now() WHERE device_id = %s",
                (cfg.mn, cfg.password, cfg.st, device_id),
            )
            summary.updated["hj212_logger"] += 1
        fields = {(f.cn, f.field): point_ids[f"{device.code}/{f.point}"] for f in cfg.fields}
        have = {
            (cn, field): pid
            for cn, field, pid in execute(
                conn, "SELECT cn, field, point_id FROM hj212_field WHERE device_id = %s", (device_id,)
            ).fetchall()
        }
        if have != fields:
            execute(conn, "DELETE FROM hj212_field WHERE device_id = %s", (device_id,))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO hj212_field (device_id, cn, field, point_id) VALUES (%s, %s, %s, %s)",
                    [(device_id, cn, field, pid) for (cn, field), pid in fields.items()],
                )
            if row is not None:
                summary.updated["hj212_field"] += 1


def _export_hj212(conn: psycopg.Connection, device_id: int) -> Hj212Config | None:
    row = execute(
        conn, "SELECT mn, password, st FROM hj212_logger WHERE device_id = %s AND retired_at IS NULL", (device_id,)
    ).fetchone()
    if row is None:
        return None
    fields = execute(
        conn,
        """
        SELECT f.field, f.cn, p.key FROM hj212_field f JOIN point p ON p.id = f.point_id
        WHERE f.device_id = %s ORDER BY f.cn, f.field""",
        (device_id,),
    ).fetchall()
    return Hj212Config(
        mn=row[0],
        password=row[1],
        st=row[2],
        fields=[Hj212FieldConfig(field=f, cn=cn, point=key) for f, cn, key in fields],
    )


def _digest(plant: PlantConfig) -> str:
    return hashlib.sha256(plant.model_dump_json().encode()).hexdigest()


def apply_plant(*, conn: psycopg.Connection, plant: PlantConfig, source: str) -> ApplySummary:
    """Make the registry match ``plant`` within the caller's transaction; record a revision if it changed.

    Sites absent from the file are left alone (a file may describe one site of several); areas, devices,
    points and meters of a listed site that the file no longer names are retired.
    """
    summary = ApplySummary()
    for site in plant.sites:
        site_id = _sync(
            conn,
            summary,
            "site",
            {"code": site.code},
            {site.code: {"name": site.name, "name_en": site.name_en, "timezone": site.timezone}},
            retire=False,
        )[site.code]
        area_ids = _sync(
            conn,
            summary,
            "area",
            {"site_id": site_id},
            {a.code: {"name": a.name, "name_en": a.name_en, "process_type": a.process.value} for a in site.areas},
        )
        device_ids = _sync(
            conn,
            summary,
            "device",
            {"site_id": site_id},
            {
                d.code: {
                    "area_id": area_ids[a.code],
                    "name": d.name,
                    "name_en": d.name_en,
                    "kind": d.kind,
                    "interval_s": d.interval_s,
                }
                for a in site.areas
                for d in a.devices
            },
        )
        point_ids: dict[str, int] = {}
        for area in site.areas:
            for device in area.devices:
                ids = _sync(
                    conn,
                    summary,
                    "point",
                    {"device_id": device_ids[device.code]},
                    {
                        p.key: {
                            "name": p.name,
                            "name_en": p.name_en,
                            "quantity": p.quantity,
                            "unit": p.unit,
                            "kind": p.kind.value,
                            "valid_min": p.range[0],
                            "valid_max": p.range[1],
                            "nominal": p.nominal,
                        }
                        for p in device.points
                    },
                    key_col="key",
                )
                point_ids.update({f"{device.code}/{key}": pid for key, pid in ids.items()})
        _apply_hj212(conn, summary, site, device_ids, point_ids)
        # Meters in two passes: rows first, then parents (a parent may come later in the file).
        new_meters: set[str] = set()
        meter_ids = _sync(
            conn,
            summary,
            "meter",
            {"site_id": site_id},
            {
                m.code: {
                    "name": m.name,
                    "name_en": m.name_en,
                    "medium": m.medium.value,
                    "point_id": point_ids[m.point] if m.point else None,
                    "formula": m.formula,
                    "area_id": area_ids[m.area] if m.area else None,
                }
                for m in site.meters
            },
            created=new_meters,
        )
        for meter in site.meters:
            parent = meter_ids[meter.parent] if meter.parent else None
            cur = execute(
                conn,
                "UPDATE meter SET parent_id = %s, updated_at = now() WHERE id = %s AND parent_id IS DISTINCT FROM %s",
                (parent, meter_ids[meter.code], parent),
            )
            if cur.rowcount and meter.code not in new_meters:
                summary.updated["meter"] += 1
        _apply_balance_limits(conn, summary, site, meter_ids)
        _apply_production_points(conn, summary, site, area_ids, point_ids)
    if summary.changed:
        summary.revision = record_revision(conn, source=source, sha256=_digest(plant), summary=summary.as_dict())
    return summary


def _apply_balance_limits(
    conn: psycopg.Connection, summary: ApplySummary, site: SiteConfig, meter_ids: dict[str, int]
) -> None:
    """Make the site's meter balance limits (energy_balance_limit, migration 0051) match the file."""
    wanted = {
        meter_ids[m.code]: (m.loss_limit_pct, m.loss_hold_minutes) for m in site.meters if m.loss_limit_pct is not None
    }
    have = {
        r[0]: (r[1], r[2])
        for r in execute(
            conn,
            "SELECT meter_id, loss_pct_max, hold_minutes FROM energy_balance_limit WHERE meter_id = ANY(%s)",
            (list(meter_ids.values()),),
        ).fetchall()
    }
    if wanted == have:
        return
    execute(conn, "DELETE FROM energy_balance_limit WHERE meter_id = ANY(%s)", (list(meter_ids.values()),))
    for meter_id, (pct, hold) in wanted.items():
        execute(
            conn,
            "INSERT INTO energy_balance_limit (meter_id, loss_pct_max, hold_minutes) VALUES (%s, %s, %s)",
            (meter_id, pct, hold),
        )
    summary.updated["energy_balance_limit"] += 1


def _apply_production_points(
    conn: psycopg.Connection,
    summary: ApplySummary,
    site: SiteConfig,
    area_ids: dict[str, int],
    point_ids: dict[str, int],
) -> None:
    """Make the site's output counters per area (energy_production_point, migration 0052) match the file."""
    wanted = {(area_ids[a.code], point_ids[ref]) for a in site.areas for ref in a.production if ref in point_ids}
    have = set(
        execute(
            conn,
            "SELECT area_id, point_id FROM energy_production_point WHERE area_id = ANY(%s)",
            (list(area_ids.values()),),
        ).fetchall()
    )
    if wanted == have:
        return
    execute(conn, "DELETE FROM energy_production_point WHERE area_id = ANY(%s)", (list(area_ids.values()),))
    for area_id, point_id in sorted(wanted):
        execute(conn, "INSERT INTO energy_production_point (area_id, point_id) VALUES (%s, %s)", (area_id, point_id))
    summary.updated["energy_production_point"] += 1


def record_revision(conn: psycopg.Connection, *, source: str, sha256: str, summary: dict[str, Any]) -> int:
    """Record a configuration change (running processes reload on a new revision) and announce it."""
    revision = execute(
        conn,
        "INSERT INTO config_revision (source, sha256, summary) VALUES (%s, %s, %s) RETURNING id",
        (source, sha256, json.dumps(summary)),
    ).fetchone()[0]
    execute(conn, "SELECT pg_notify('config_changed', %s)", (str(revision),))
    return revision


# --- export -----------------------------------------------------------------------------------------------


def export_plant(*, conn: psycopg.Connection, site: str | None = None) -> PlantConfig:
    """Read the active registry back into a ``PlantConfig`` (the inverse of ``apply_plant``)."""

    def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
        cur = execute(conn, sql, params)
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    sites = []
    for s in rows("SELECT * FROM site WHERE %s::text IS NULL OR code = %s ORDER BY id", site, site):
        areas = []
        for a in rows("SELECT * FROM area WHERE site_id = %s AND retired_at IS NULL ORDER BY id", s["id"]):
            devices = []
            for d in rows("SELECT * FROM device WHERE area_id = %s AND retired_at IS NULL ORDER BY id", a["id"]):
                points = [
                    PointConfig(
                        key=p["key"],
                        name=p["name"],
                        name_en=p["name_en"],
                        quantity=p["quantity"],
                        unit=p["unit"],
                        kind=p["kind"],
                        range=(p["valid_min"], p["valid_max"]),
                        nominal=p["nominal"],
                    )
                    for p in rows(
                        "SELECT * FROM point WHERE device_id = %s AND retired_at IS NULL ORDER BY id", d["id"]
                    )
                ]
                devices.append(
                    DeviceConfig(
                        code=d["code"],
                        name=d["name"],
                        name_en=d["name_en"],
                        kind=d["kind"],
                        interval_s=d["interval_s"],
                        points=points,
                        hj212=_export_hj212(conn, d["id"]),
                    )
                )
            production = [
                r["ref"]
                for r in rows(
                    """
                SELECT d.code || '/' || p.key AS ref FROM energy_production_point pp JOIN point p ON p.id = pp.point_id
                JOIN device d ON d.id = p.device_id WHERE pp.area_id = %s ORDER BY pp.point_id""",
                    a["id"],
                )
            ]
            areas.append(
                AreaConfig(
                    code=a["code"],
                    name=a["name"],
                    name_en=a["name_en"],
                    process=a["process_type"],
                    devices=devices,
                    production=production,
                )
            )
        meters = [
            MeterConfig(
                code=m["code"],
                name=m["name"],
                name_en=m["name_en"],
                medium=m["medium"],
                point=m["point"],
                formula=m["formula"],
                parent=m["parent"],
                area=m["area"],
                loss_limit_pct=m["loss_pct_max"],
                loss_hold_minutes=m["hold_minutes"],
            )
            for m in rows(
                """
                      SELECT m.code, m.name, m.name_en, m.medium, d.code || '/' || p.key AS point, m.formula,
                             pm.code AS parent, a.code AS area, bl.loss_pct_max, bl.hold_minutes
                      FROM meter m LEFT JOIN point p ON p.id = m.point_id LEFT JOIN device d ON d.id = p.device_id
                      LEFT JOIN energy_balance_limit bl ON bl.meter_id = m.id
                      LEFT JOIN meter pm ON pm.id = m.parent_id LEFT JOIN area a ON a.id = m.area_id
                      WHERE m.site_id = %s AND m.retired_at IS NULL ORDER BY m.id""",
                s["id"],
            )
        ]
        sites.append(
            SiteConfig(
                code=s["code"], name=s["name"], name_en=s["name_en"], timezone=s["timezone"], areas=areas, meters=meters
            )
        )
    return PlantConfig(sites=sites)


def dump_yaml(plant: BaseModel) -> str:
    """Render a configuration as YAML, leaving out empty optional fields."""
    data = plant.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)
