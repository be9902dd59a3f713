"""Schemas of the alarm engine's routes: alarms, their events, commands, notifications, plans, floods, bypasses.

Field names are the columns of the tables (core/migrations/0011-0013) plus what ``alerts.alarm.Alarm.to_dict``
adds; clients (the mobile PWA) depend on them, so they are never renamed. Signed command payloads and
delivery errors of notifications (which may quote a webhook URL) are left out. States, priorities and
statuses are the domain's enums (issue 18), so the OpenAPI document lists their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from alerts.decisions import CommandStatus
from alerts.models import AlarmState, Priority
from alerts.notifications.status import OutboxStatus
from core.model import Severity

#: alarm_event ids are bigserial
EventId = Annotated[int, Field(ge=0, le=9_223_372_036_854_775_807)]
SeenVersion = Annotated[
    EventId | None,
    Field(
        description="The `version` the client last saw; if the alarm changed "
        "since, the answer is 409 with code `alarm_changed`"
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class AlarmRead(BaseModel):
    id: int
    rule: str
    source: str = Field(description="site/area/device/point")
    site: str = Field(description="Site code")
    area: str | None = Field(description="Area code")
    device: str | None
    point: str | None
    rule_type: str | None
    detector: str | None
    rule_revision: int | None
    title: str
    title_en: str | None
    state: AlarmState
    condition_active: bool
    severity: Severity = Field(description="Now: 0 normal, 1 low ... 4 critical")
    priority: Priority = Field(description="Highest this episode: 1 low ... 4 critical")
    latching: bool
    alarm_class: str
    level: str | None
    value: float | None
    message: str
    raised_at: datetime | None
    last_raised_at: datetime | None
    cleared_at: datetime | None
    activations: int
    acked_at: datetime | None
    acked_by: str | None
    shelved_until: datetime | None
    shelved_by: str | None
    shelve_reason: str | None
    oos_by: str | None
    oos_reason: str | None
    oos_permit: str | None
    suppressed_by: int | None
    first_out: bool
    chattering: bool
    flood_id: int | None
    plan_level: int | None
    drill: bool
    first_finding_id: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    state_label: str
    state_label_en: str
    state_code: str
    needs_ack: bool
    annunciated: bool
    priority_label: str
    version: int = Field(description="Id of the alarm's latest event: changes whenever the alarm changes")


class AlarmEventRead(BaseModel):
    id: int
    alarm_id: int
    at: datetime
    recorded_at: datetime
    kind: str
    from_state: AlarmState | None
    to_state: AlarmState | None
    severity: Severity | None
    priority: Priority | None
    value: float | None
    actor: str
    cause: str | None
    caused_by: str | None
    batch_id: str | None
    annunciated: bool
    drill: bool
    rule: str
    source: str
    site: str
    area: str | None
    detail: dict[str, Any]


class CommandRead(BaseModel):
    id: UUID
    site: str
    area: str | None
    device: str
    action: str
    params: dict[str, Any]
    origin: str
    drill: bool
    status: CommandStatus
    issued_at: datetime | None
    expires_at: datetime | None
    accept_by: datetime | None
    done_by: datetime | None
    attempts: int
    max_attempts: int
    accept_within_s: float
    done_within_s: float
    alarm_id: int | None
    alarm_event_id: int | None
    finding_id: str | None
    batch_id: str | None
    plan: str | None
    plan_level: int | None
    requested_by: str
    reason: str
    detail: str
    device_state: Any = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class CommandEventRead(BaseModel):
    id: int
    command_id: UUID
    at: datetime
    status: str
    detail: str
    state: Any = None
    actor: str


class CommandDetail(CommandRead):
    events: list[CommandEventRead]


class NotificationRead(BaseModel):
    id: int
    created_at: datetime
    kind: str
    alarm_id: int | None
    alarm_event_id: int | None
    flood_id: int | None
    command_id: UUID | None
    site: str
    area: str | None
    priority: Priority | None
    plan: str | None
    plan_level: int | None
    recipients: dict[str, Any]
    channels: list[Any]
    title: str
    title_en: str | None
    body: str
    body_en: str | None
    evacuation: dict[str, Any] | None
    drill: bool
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None


class EvacuationRead(BaseModel):
    zh: str
    en: str
    route: str
    route_en: str
    assembly_point: str | None
    assembly_point_en: str | None


class InterlockActionRead(BaseModel):
    device: str = Field(description="Device code, glob, or $source")
    action: str
    params: dict[str, Any]


class PlanRead(BaseModel):
    """The response plan level that applies to an alarm (its area, the level it started)."""

    site: str
    area: str
    name: str
    name_en: str | None
    level: int = Field(description="1 = 一级 (most severe) ... 4")
    level_name: str
    level_name_en: str | None
    evacuation: EvacuationRead | None
    interlocks: list[InterlockActionRead]
    notify_roles: list[str]
    operator_action: str | None = Field(description="What the operator does (the alarm rule's action), zh")
    operator_action_en: str | None


class AlarmDetail(AlarmRead):
    events: list[AlarmEventRead]
    commands: list[CommandRead]
    notifications: list[NotificationRead]
    plan: PlanRead | None


class AlarmConflict(BaseModel):
    detail: str
    code: str = Field(description="alarm_changed (seen_version is stale) or illegal_transition")
    alarm: AlarmRead


# --- requests ----------------------------------------------------------------------------------------------


class AckBody(BaseModel):
    comment: str | None = Field(None, max_length=2000)
    seen_version: SeenVersion = None


class ActionBody(BaseModel):
    """Unshelve, reset, return to service: an optional comment and the version seen."""

    comment: str | None = Field(None, max_length=2000)
    seen_version: SeenVersion = None


class ShelveBody(BaseModel):
    reason: Text
    minutes: int = Field(ge=1, le=7 * 24 * 60, description="At most the engine's limit (alarms.defaults.shelve_max_h)")
    seen_version: SeenVersion = None


class OutOfServiceBody(BaseModel):
    reason: Text
    permit: Text = Field(description="Work permit or management-of-change reference")
    seen_version: SeenVersion = None


class CommentBody(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]


# --- KPIs and floods ------------------------------------------------------------------------------------------


class KpiRead(BaseModel):
    """ISA-18.2 alarm-system KPIs for a period (alerts/kpi.py); ``targets`` holds the ISA figures."""

    since: datetime
    until: datetime
    site: str | None
    area: str | None
    annunciated: int
    alarms_per_day: float
    alarms_per_hour: float
    alarms_per_10min: float
    max_per_10min: int
    pct_10min_over_10: float
    pct_hours_over_30: float
    floods: list[dict[str, Any]]
    pct_time_in_flood: float
    top10: list[dict[str, Any]]
    top10_share_pct: float
    chattering: int
    chattering_alarms: list[dict[str, Any]]
    stale_present: int
    stale_alarms: list[dict[str, Any]]
    priority_pct: dict[str, float]
    targets: dict[str, dict[str, float]]


class FloodRead(BaseModel):
    id: int
    site: str
    area: str
    started_at: datetime
    ended_at: datetime | None
    alarm_count: int
    peak_per_window: int
    first_alarm_id: int | None
    drill: bool


class FloodAlarmRead(AlarmRead):
    is_first_out: bool = Field(description="The flood's first alarm (first-out)")


class FloodDetail(FloodRead):
    alarms: list[FloodAlarmRead]


# --- commands, bypasses, drills ---------------------------------------------------------------------------------

Code = Annotated[str, Field(min_length=1, max_length=64)]


class CommandCreate(BaseModel):
    """A manual interlock command to a declared actuator; the alerts worker signs and sends it."""

    site: Code
    device: Code
    action: Annotated[str, Field(min_length=1, max_length=64, description="e.g. exhaust_fan.on")]
    params: dict[str, Any] = Field(default_factory=dict)
    reason: Text
    alarm_id: int | None = Field(None, ge=1, le=9_223_372_036_854_775_807, description="The alarm it answers")


class BypassRead(BaseModel):
    id: int
    site: str
    area: str | None = Field(description="The device's area (registry)")
    device: str
    action: str | None = Field(description="null: every action of the device")
    reason: str
    duration_s: int
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    expires_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None
    status: str = Field(description="requested, active, expired or revoked")


class BypassCreate(BaseModel):
    """Ask to bypass automatic commands to an actuator; a second person approves it, and it expires."""

    site: Code
    device: Code
    action: Annotated[str | None, Field(max_length=64, description="Only this action (default: all)")] = None
    reason: Text
    minutes: int = Field(ge=1, le=24 * 60, description="How long it lasts once approved (at most 24 h)")


class DrillCreate(BaseModel):
    """Run a response plan level as a drill: simulated devices only, every record marked drill."""

    site: Code
    area: Code
    level: int = Field(ge=1, le=4)
    reason: Text
