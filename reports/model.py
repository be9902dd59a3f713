"""The document model every report returns and every renderer reads: title, sections, typed tables, charts drawn
from those tables, notes and sources. A document is built in one language (``lang``); renderers only lay it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

LANGS = ("zh-CN", "en")


def tr(lang: str, zh: str, en: str) -> str:
    """The text in the document's language."""
    return en if lang == "en" else zh


class ColType(StrEnum):
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    DATETIME = "datetime"  # aware datetimes; shown in the site's time zone
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    type: ColType = ColType.TEXT
    unit: str | None = None
    digits: int = 2  # decimals shown for FLOAT

    def header(self) -> str:
        """The label with its unit, as every renderer writes it: ``浓度 [ppm]``."""
        return f"{self.label} [{self.unit}]" if self.unit else self.label


@dataclass(slots=True)
class Table:
    key: str  # ascii, unique in the document: the XLSX sheet name and the CSV block name
    title: str
    columns: list[Column]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""

    def column(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def values(self, key: str) -> list[Any]:
        i = self.column(key)
        return [r[i] for r in self.rows]


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart drawn from a table of the same document (the numbers in the PDF's chart are the table's)."""

    title: str
    table: str  # Table.key
    x: str  # column key
    y: tuple[str, ...]  # column keys, one series each
    kind: str = "line"  # line, step, bar


@dataclass(slots=True)
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    kind: str
    title: str
    lang: str
    plant: str  # the site's name as the plant knows it
    site: str  # site code
    timezone: str
    period: str  # human text of the period
    generated_at: datetime
    data_as_of: datetime | None
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    revision: dict[str, Any] = field(default_factory=dict)
    areas: list[str] = field(default_factory=list)  # area codes the document covers (the archive's scope)

    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    def table(self, key: str) -> Table:
        return next(t for t in self.tables() if t.key == key)

    def local(self, value: datetime) -> datetime:
        return value.astimezone(ZoneInfo(self.timezone))

    def fmt_time(self, value: datetime | None) -> str:
        return "—" if value is None else self.local(value).strftime("%Y-%m-%d %H:%M:%S")


def fmt_cell(doc: Document, column: Column, value: Any) -> str:
    """A value as text for the PDF and the CSV (XLSX keeps it typed)."""
    if value is None:
        return "—" if column.type is not ColType.TEXT else ""
    if column.type is ColType.DATETIME:
        return doc.fmt_time(value)
    if column.type is ColType.FLOAT:
        return f"{float(value):.{column.digits}f}"
    if column.type is ColType.BOOL:
        return tr(doc.lang, "是", "yes") if value else tr(doc.lang, "否", "no")
    return str(value)


@dataclass(frozen=True, slots=True)
class Params:
    """What a report is asked for: a site, a period ``[since, until)``, optionally some areas, the language, and
    for the incident report the alarm or flood."""

    site: str
    since: datetime
    until: datetime
    areas: tuple[str, ...] | None = None
    lang: str = "zh-CN"
    alarm_id: int | None = None
    flood_id: int | None = None

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise ValueError(f"language must be one of {', '.join(LANGS)}")
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("since and until need a time zone")
        if self.until <= self.since:
            raise ValueError("until must be after since")
        # instants in UTC: arithmetic on two times of one zone would ignore a summer-time change between them
        object.__setattr__(self, "since", self.since.astimezone(UTC))
        object.__setattr__(self, "until", self.until.astimezone(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "since": self.since.astimezone(UTC).isoformat(),
            "until": self.until.astimezone(UTC).isoformat(),
            "areas": list(self.areas) if self.areas else None,
            "lang": self.lang,
            "alarm_id": self.alarm_id,
            "flood_id": self.flood_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Params:
        return cls(
            site=data["site"],
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
            areas=tuple(data["areas"]) if data.get("areas") else None,
            lang=data.get("lang") or "zh-CN",
            alarm_id=data.get("alarm_id"),
            flood_id=data.get("flood_id"),
        )


def month_period(month: str, timezone: str) -> tuple[datetime, datetime]:
    """``2026-03`` as ``[since, until)`` in the site's time zone (a month starts at local midnight)."""
    year, mon = (int(x) for x in month.split("-"))
    tz = ZoneInfo(timezone)
    since = datetime(year, mon, 1, tzinfo=tz)
    until = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return since, until


def day_period(day: date, timezone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(timezone)
    after = day + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz), datetime(after.year, after.month, after.day, tzinfo=tz)
