"""Schemas of notifications: push subscriptions, signed alarm links, people's settings, channels, escalation."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.models import AlarmState, Priority
from alerts.notifications.status import DeliveryStatus, OutboxStatus

Lang = Literal["zh-CN", "en"]


class VapidKeyRead(BaseModel):
    public_key: str = Field(description="URL-safe base64 of the uncompressed P-256 point (applicationServerKey)")


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_\-=]+$")
    auth: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_\-=]+$")


class PushSubscriptionCreate(BaseModel):
    """The browser's ``PushSubscription.toJSON()``, plus the language of its messages."""

    model_config = ConfigDict(extra="ignore")  # expirationTime and future fields of the browser

    endpoint: str = Field(min_length=8, max_length=2000, pattern=r"^https?://\S+$")
    keys: PushKeys
    lang: Lang | None = None


class PushSubscriptionRead(BaseModel):
    id: int
    endpoint: str
    created_at: datetime
    lang: Lang | None = None


class AlarmSummary(BaseModel):
    id: int
    title: str
    title_en: str | None = None
    state: AlarmState
    priority: Priority
    site: str
    area: str | None = None
    device: str | None = None
    point: str | None = None
    value: float | None = None
    message: str | None = None
    raised_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    drill: bool


class LinkRead(BaseModel):
    alarm_id: int
    alarm: AlarmSummary
    expires_at: datetime
    can_ack: bool = Field(description="The link names a person who may acknowledge and the alarm needs it")


class LinkAck(BaseModel):
    comment: str | None = Field(None, max_length=2000)


class QuietHours(BaseModel):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])


class ChannelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webpush: bool = True
    email: bool = True
    wecom: bool = True
    dingtalk: bool = True
    feishu: bool = True
    sms: bool = True


class NotificationSettings(BaseModel):
    """Own settings; quiet hours never hold priority 4 (critical)."""

    model_config = ConfigDict(extra="forbid")

    lang: Lang = "zh-CN"
    channels: ChannelChoice = ChannelChoice()
    quiet_hours: QuietHours | None = None
    min_priority: int = Field(1, ge=1, le=4)
    email: str | None = Field(
        None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="For e-mail notifications (null: keep the stored one)",
    )
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{5,20}$", description="For SMS (null: keep the stored one)")
    wecom_user: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.@\-]{1,64}$",
        description="WeCom userid, for WeCom application messages (null: keep it)",
    )


class ChannelRead(BaseModel):
    id: int
    name: str
    kind: str
    url: str = Field(description="Redacted: the secrets of the URL are never returned")
    site: str | None
    area: str | None
    min_priority: int
    drills: bool
    rate_per_s: float
    burst: float
    enabled: bool
    failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class NotificationRead(BaseModel):
    id: int
    created_at: datetime
    kind: str
    alarm_id: int | None
    site: str
    area: str | None
    priority: Priority | None
    title: str
    status: OutboxStatus
    attempts: int
    sent_at: datetime | None
    drill: bool
    last_error: str | None = None


class AttemptRead(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    channel: str
    target: str
    result: str
    error: str | None


class DeliveryRead(BaseModel):
    id: int
    recipient: str
    channel: str
    kind: str
    lang: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    tries: list[AttemptRead]


class NotificationDetail(NotificationRead):
    body: str
    recipients: dict[str, Any]
    channels: list[str]
    deliveries: list[DeliveryRead]


class PolicyRead(BaseModel):
    id: int
    name: str
    site: str | None
    area: str | None
    min_priority: int
    tiers: list[dict[str, Any]]
    reminder_s: float | None
    max_reminders: int
    enabled: bool
    updated_at: datetime


class RosterRead(BaseModel):
    id: int
    name: str
    site: str | None
    area: str | None
    role: str
    tz: str
    shifts: list[dict[str, Any]]
    updated_at: datetime

    @field_validator("shifts", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return v or []
