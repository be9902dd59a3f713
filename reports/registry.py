"""The report kinds by name: what each is called, what it needs, and the function that builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from core.permissions import Permission, Role, allowed
from reports.kinds import (
    alarm_month,
    carbon_inventory,
    compliance,
    device_health,
    energy_month,
    hazwaste,
    incident,
    interlocks,
)
from reports.model import Document, Params


@dataclass(frozen=True, slots=True)
class ReportKind:
    name: str
    title: str
    title_en: str
    subject: str  # "period", or "incident" (an alarm or a flood)
    build: Callable[[psycopg.Connection, Params, datetime], Document]
    #: The schedule cadences the kind fits (plant-file names); ``None``: any of its subject's cadences.
    cadences: frozenset[str] | None = None
    #: The permission that reads the kind's data: a caller without it neither sees nor downloads its archived files
    #: (energy is not compliance data: a regulator sees no energy report, whatever its areas).
    reads: Permission | None = None


KINDS: dict[str, ReportKind] = {
    k.name: k
    for k in (
        ReportKind("incident", "报警事件报告", "Incident report", "incident", incident.build),
        ReportKind("alarm_month", "报警管理月报", "Alarm management report", "period", alarm_month.build),
        ReportKind("interlocks", "联锁与旁路月报", "Interlock and bypass report", "period", interlocks.build),
        ReportKind("device_health", "设备健康月报", "Device health report", "period", device_health.build),
        ReportKind(
            "energy_month", "能源月报", "Energy report", "period", energy_month.build, reads=Permission.ENERGY_READ
        ),
        ReportKind(
            "carbon_inventory",
            "温室气体排放清单",
            "Greenhouse-gas inventory",
            "period",
            carbon_inventory.build,
            reads=Permission.CARBON_READ,
        ),
        ReportKind(
            "hazwaste_month",
            "危险废物管理月报",
            "Hazardous-waste monthly report",
            "period",
            hazwaste.build_month,
            reads=Permission.HAZWASTE_READ,
        ),
        ReportKind(
            "hazwaste_year",
            "危险废物年度申报数据",
            "Hazardous-waste annual declaration figures",
            "period",
            hazwaste.build_year,
            reads=Permission.HAZWASTE_READ,
        ),
        ReportKind(
            "compliance_day",
            "环保合规日报",
            "Daily compliance report",
            "period",
            compliance.build_day,
            frozenset({"daily"}),
            Permission.COMPLIANCE_READ,
        ),
        ReportKind(
            "compliance_month",
            "环保合规月报",
            "Monthly compliance report",
            "period",
            compliance.build_month,
            reads=Permission.COMPLIANCE_READ,
        ),
    )
}


def readable_kinds(role: Role) -> list[str]:
    """The kinds whose archived files a caller of ``role`` may see (those whose data the role may read)."""
    return [k.name for k in KINDS.values() if k.reads is None or allowed(role, k.reads)]
