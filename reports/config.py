"""The optional ``reports:`` section of the plant file: report schedules per site.

    reports:
      - site: cz01
        schedules:
          - name: cz01-alarms-monthly
            kind: alarm_month
            cadence: monthly          # daily, weekly, monthly or after_incident
            time: "06:00"             # local time (the site's zone) the report is due on the day the period ends
            grace_minutes: 120        # then report.late is raised if no run has succeeded
            params: {areas: [formation], language: zh-CN, formats: [pdf, xlsx]}
            recipients: [ehs-mail:ehs@example.com, ehs-dingtalk]   # channel, or channel:address for e-mail

Applying is idempotent: a schedule is created or updated (audited) only when it differs, and schedules the file
made earlier (``managed_by = 'config'``) that it no longer names are disabled (audited). Schedules made from the
console or the API are left alone, unless the file names them: then the file takes them over.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from reports import schedules
from reports.context import rows
from reports.model import LANGS
from reports.registry import KINDS
from reports.render import FORMATS

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Recipient = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(:[^\s:@]+@[^\s:@]+\.[^\s:@]+)?$", max_length=300)
]
ACTOR = "system:config"


class ReportParamsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    areas: list[Code] | None = Field(None, description="area codes of the site; all areas when left out")
    language: str = "zh-CN"
    formats: list[str] = Field(default_factory=lambda: ["pdf", "xlsx"], min_length=1)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGS:
            raise ValueError(f"language must be one of {', '.join(LANGS)}")
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown formats {unknown}; known: {', '.join(FORMATS)}")
        return list(dict.fromkeys(value))


class ReportScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: str
    cadence: Literal["daily", "weekly", "monthly", "after_incident"]
    time: dt.time = Field(dt.time(6, 0), description="local time the report is due on the day its period ends")
    grace_minutes: int = Field(120, ge=0, le=7 * 24 * 60)
    params: ReportParamsConfig = ReportParamsConfig()
    recipients: list[Recipient] = Field(default_factory=list, description="channel, or channel:address (e-mail)")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown report kind {value!r}; known: {', '.join(KINDS)}")
        return value

    def spec(self, site: str) -> schedules.ScheduleSpec:
        return schedules.ScheduleSpec(
            name=self.name,
            kind=self.kind,
            site=site,
            every=schedules.CADENCES[self.cadence],
            formats=tuple(self.params.formats),
            areas=tuple(self.params.areas) if self.params.areas else None,
            lang=self.params.language,
            deliver_to=tuple(dict.fromkeys(self.recipients)),
            at_local=self.time,
            grace=dt.timedelta(minutes=self.grace_minutes),
            managed_by="config",
        )


class ReportSiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Code
    schedules: list[ReportScheduleConfig] = Field(default_factory=list)


class ReportsSection(BaseModel):
    """The optional ``reports:`` section of a plant file."""

    reports: list[ReportSiteConfig] = Field(default_factory=list)


def check_reports(section: ReportsSection, plant: Any) -> list[tuple[tuple, str]]:
    """Cross-references to the registry part of the plant file (sites, areas), names unique, cadence fits kind."""
    areas = {site.code: {a.code for a in site.areas} for site in plant.sites}
    problems: list[tuple[tuple, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(section.reports):
        if item.site not in areas:
            problems.append((("reports", i, "site"), f"no site {item.site!r} in the plant file"))
        for j, s in enumerate(item.schedules):
            loc = ("reports", i, "schedules", j)
            if s.name in seen:
                problems.append(((*loc, "name"), f"schedule {s.name!r} is named twice"))
            seen.add(s.name)
            if (s.cadence == "after_incident") != (KINDS[s.kind].subject == "incident"):
                problems.append(
                    (
                        (*loc, "cadence"),
                        f"{s.kind!r} reports are scheduled "
                        + ("after_incident" if KINDS[s.kind].subject == "incident" else "daily, weekly or monthly"),
                    )
                )
            fits = KINDS[s.kind].cadences
            if fits is not None and s.cadence not in fits:
                problems.append(((*loc, "cadence"), f"{s.kind!r} reports are scheduled {' or '.join(sorted(fits))}"))
            if item.site in areas:
                for k, area in enumerate(s.params.areas or []):
                    if area not in areas[item.site]:
                        problems.append(((*loc, "params", "areas", k), f"no area {area!r} in site {item.site!r}"))
    return problems


def apply_reports(*, conn: psycopg.Connection, section: ReportsSection, actor: str = ACTOR) -> dict[str, list[str]]:
    """Make the database's config-managed schedules what the section says (idempotent; audited per change).
    Returns the names ``put`` (created or changed) and ``disabled``."""
    put: list[str] = []
    named: list[str] = []
    for item in section.reports:
        for s in item.schedules:
            named.append(s.name)
            row = schedules.put_schedule(conn, spec=s.spec(item.site), actor=actor)
            if row["changed"]:
                put.append(s.name)
    gone = rows(
        conn,
        "SELECT name FROM report_schedule WHERE managed_by = 'config' AND enabled AND NOT (name = ANY(%s)) "
        "ORDER BY name",
        (named,),
    )
    disabled = [g["name"] for g in gone if schedules.disable_schedule(conn, name=g["name"], actor=actor)]
    return {"put": put, "disabled": disabled}
