"""Schemas of readings: latest values, raw readings, buckets (a bucket without readings is a gap, not a zero)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LatestValue(BaseModel):
    point_id: int
    site: str
    device: str
    key: str
    unit: str
    time: datetime
    value: float | None
    quality: int = Field(description="0 good, 1 uncertain, 2 bad (the device sent null)")


class ReadingRead(BaseModel):
    time: datetime
    value: float | None
    quality: int


class BucketRead(BaseModel):
    """Aggregates of one bucket; all null with count 0 when the point sent nothing then (a gap)."""

    time: datetime = Field(description="Start of the bucket")
    min: float | None
    max: float | None
    avg: float | None
    last: float | None
    count: int


class ReadingsRead(BaseModel):
    point_id: int
    unit: str
    bucket: Literal["raw", "1m", "1h"]
    start: datetime
    end: datetime
    readings: list[ReadingRead] | None = Field(None, description="With bucket=raw: oldest first")
    buckets: list[BucketRead] | None = Field(None, description="With bucket=1m or 1h: every bucket in range")
    next: str | None = Field(None, description="Raw readings only: cursor (`after`) of the next page")
