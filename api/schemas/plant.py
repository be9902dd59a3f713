"""Schemas of the plant registry: sites, areas, devices, points, meters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas import DbId
from core.model import Medium, PointKind, ProcessType
from core.plant import Code, Name, PointConfig


def _timezone(value: str) -> str:
    if value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r} (IANA names such as Asia/Shanghai)")
    return value


Timezone = Annotated[str, AfterValidator(_timezone)]
Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteRead(BaseModel):
    id: int
    code: str
    name: str
    name_en: str | None
    timezone: str


class SiteCreate(_In):
    code: Code
    name: Name
    name_en: Name | None = None
    timezone: Timezone = "Asia/Shanghai"


class SiteUpdate(_In):
    name: Name | None = None
    name_en: Name | None = None
    timezone: Timezone | None = None


class AreaRead(BaseModel):
    id: int
    site_id: int
    site: str
    code: str
    name: str
    name_en: str | None
    process: ProcessType
    retired_at: datetime | None


class AreaCreate(_In):
    site_id: DbId
    code: Code
    name: Name
    name_en: Name | None = None
    process: ProcessType


class AreaUpdate(_In):
    name: Name | None = None
    name_en: Name | None = None
    process: ProcessType | None = None


class DeviceRead(BaseModel):
    id: int
    site_id: int
    site: str
    area_id: int
    area: str
    code: str
    name: str
    name_en: str | None
    kind: str
    interval_s: float
    status: str
    status_at: datetime | None
    retired_at: datetime | None


class DeviceCreate(_In):
    area_id: DbId
    code: Code
    name: Name
    name_en: Name | None = None
    kind: Kind
    interval_s: float = Field(10.0, gt=0, le=86400)
    points: list[PointConfig] = Field(min_length=1, max_length=500)


class DeviceUpdate(_In):
    area_id: DbId | None = Field(None, description="Move the device to another area of the same site")
    name: Name | None = None
    name_en: Name | None = None
    kind: Kind | None = None
    interval_s: float | None = Field(None, gt=0, le=86400)


class PointRead(BaseModel):
    id: int
    device_id: int
    device: str
    site_id: int
    site: str
    area_id: int
    key: str
    name: str
    name_en: str | None
    quantity: str
    unit: str
    kind: PointKind
    valid_min: float | None
    valid_max: float | None
    nominal: float | None
    retired_at: datetime | None


class PointCreate(PointConfig):
    device_id: DbId


class PointUpdate(_In):
    """Name, range and nominal may change; key, quantity and unit are the point's identity (add a new point)."""

    name: Name | None = None
    name_en: Name | None = None
    range: tuple[float, float] | None = None
    nominal: float | None = None


class MeterRead(BaseModel):
    id: int
    site_id: int
    site: str
    code: str
    name: str
    name_en: str | None
    medium: Medium
    point_id: int | None = Field(None, description="null for a virtual meter")
    parent_id: int | None
    area_id: int | None
    formula: str | None = Field(None, description="virtual meter: sums and differences of meters")
    retired_at: datetime | None


class MeterCreate(_In):
    site_id: DbId
    code: Code
    name: Name
    name_en: Name | None = None
    medium: Medium
    point_id: DbId
    parent_id: DbId | None = None
    area_id: DbId | None = None


class MeterUpdate(_In):
    name: Name | None = None
    name_en: Name | None = None
    parent_id: DbId | None = Field(None, description="null detaches the meter from its parent")
    area_id: DbId | None = None
