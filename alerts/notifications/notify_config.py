"""Notification channels, escalation policies, duty rosters, people's settings and push subscriptions as data.

Functions with a keyword-only ``conn``; they never commit. Channel URLs are sealed on the way in and only their
redacted form comes out (``url``); the API and the plant file (``notifications:`` section) both come here.
"""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

import orjson
import psycopg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts import store
from alerts.models import AlarmError, NotFound
from alerts.notifications.notify import SCHEMES
from alerts.notifications.outbox import DEFAULT_CHANNELS
from alerts.seal import redact, seal
from core import db
from core.keys import Keyring

ChannelKind = Literal["wecom", "wecom_app", "dingtalk", "feishu", "email", "sms", "webhook", "log"]

#: Providers' published limits as token buckets (messages per second, burst). A bucket lets ``burst + rate * T``
#: through in any window of T seconds, so both are chosen to stay inside every published window: DingTalk robot
#: and WeCom group bot 20/min -> 10 + 10/min; Feishu bot 100/min and 5/s -> 3 + 1.6/s (4.6 in a second, 99 in a
#: minute). The others are conservative defaults for SMTP servers, SMS gateways and WeCom applications (whose
#: limits are per member and per day: 30 a minute to one person).
RATE_DEFAULTS = {
    "dingtalk": (10 / 60, 10.0),
    "wecom": (10 / 60, 10.0),
    "feishu": (1.6, 3.0),
    "email": (5.0, 20.0),
    "sms": (1.0, 10.0),
    "webhook": (10.0, 50.0),
    "log": (100.0, 100.0),
    "wecom_app": (5.0, 20.0),
}


class ChannelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: ChannelKind
    url: str = Field(min_length=3, max_length=2000, description="apprise URL; sealed, never returned")
    site: str | None = None
    area: str | None = None
    min_priority: int = Field(1, ge=1, le=4)
    drills: bool = True
    rate_per_s: float | None = Field(None, gt=0, le=1000)
    burst: float | None = Field(None, ge=1, le=10000)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _no_spaces(cls, v: str) -> str:
        if any(c.isspace() for c in v):
            raise ValueError("a channel URL has no spaces")
        return v


class TierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_s: float = Field(ge=0, le=7 * 86400)
    roles: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    site: str | None = None
    area: str | None = None
    min_priority: int = Field(1, ge=1, le=4)
    tiers: list[TierSpec] = Field(default_factory=list, max_length=10)
    reminder_s: float | None = Field(None, ge=60, le=86400)
    max_reminders: int = Field(6, ge=0, le=100)
    enabled: bool = True


class ShiftSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    start: time
    end: time
    users: list[str] = Field(default_factory=list)
    on_call: list[str] = Field(default_factory=list)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("days are ISO weekdays 1 (Monday) to 7 (Sunday)")
        return v


class RosterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(min_length=1, max_length=50)
    site: str | None = None
    area: str | None = None
    tz: str = "Asia/Shanghai"
    shifts: list[ShiftSpec] = Field(default_factory=list, max_length=50)


class NotificationSection(BaseModel):
    """The plant file's ``notifications:`` section (URLs may be ``${ENV_VAR}`` references resolved on load)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelSpec] = Field(default_factory=list)
    escalation: list[PolicySpec] = Field(default_factory=list)
    rosters: list[RosterSpec] = Field(default_factory=list)


# --- channels ------------------------------------------------------------------------------------------------

_CHANNEL_OUT = (
    "SELECT id, name, kind, url_redacted AS url, site, area, min_priority, drills, rate_per_s, burst, "
    "enabled, failures, failing_since, created_at, updated_at FROM notification_channel"
)


class ChannelRefused(AlarmError):
    """A channel URL of the wrong kind (400, as the API has always answered it)."""

    status = 400


def _check_scheme(spec: ChannelSpec) -> None:
    scheme = spec.url.split("://", 1)[0].lower() if "://" in spec.url else ""
    if scheme not in SCHEMES[spec.kind]:
        starts = " or ".join(s + "://" for s in SCHEMES[spec.kind])
        raise ChannelRefused(f"a {spec.kind} channel URL starts with {starts}")


def put_channel(
    *, conn: psycopg.Connection, secret: str | Keyring, spec: ChannelSpec, channel_id: int | None = None
) -> dict[str, Any]:
    """Create (or replace, by id or else by name) a channel; the URL is sealed, the answer redacted."""
    _check_scheme(spec)
    rate, burst = RATE_DEFAULTS[spec.kind]
    values = {
        "name": spec.name,
        "kind": spec.kind,
        "url_sealed": seal(secret, spec.url),
        "url_redacted": redact(spec.url),
        "site": spec.site,
        "area": spec.area,
        "min_priority": spec.min_priority,
        "drills": spec.drills,
        "rate_per_s": spec.rate_per_s or rate,
        "burst": spec.burst or burst,
        "enabled": spec.enabled,
    }
    if channel_id is not None:
        done = db.execute(
            conn,
            "UPDATE notification_channel SET name = %(name)s, kind = %(kind)s, url_sealed = "
            "%(url_sealed)s, url_redacted = %(url_redacted)s, site = %(site)s, area = %(area)s, "
            "min_priority = %(min_priority)s, drills = %(drills)s, rate_per_s = %(rate_per_s)s, "
            "burst = %(burst)s, tokens = least(tokens, %(burst)s), enabled = %(enabled)s, "
            "failures = 0, updated_at = now() WHERE id = %(id)s RETURNING id",
            {**values, "id": channel_id},
        ).fetchone()
        if done is None:
            raise NotFound(f"no channel {channel_id}")
    else:
        channel_id = db.execute(
            conn,
            "INSERT INTO notification_channel (name, kind, url_sealed, url_redacted, site, area, min_priority, drills, "
            "rate_per_s, burst, tokens, enabled) VALUES (%(name)s, %(kind)s, %(url_sealed)s, %(url_redacted)s, "
            "%(site)s, %(area)s, %(min_priority)s, %(drills)s, %(rate_per_s)s, %(burst)s, %(burst)s, %(enabled)s) "
            "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url_sealed = excluded.url_sealed, url_redacted = "
            "excluded.url_redacted, site = excluded.site, area = excluded.area, min_priority = excluded.min_priority, "
            "drills = excluded.drills, rate_per_s = excluded.rate_per_s, burst = excluded.burst, enabled = "
            "excluded.enabled, updated_at = now() RETURNING id",
            values,
        ).fetchone()[0]
    return get_channel(conn=conn, channel_id=channel_id)


def channel_name_taken(*, conn: psycopg.Connection, name: str, other_than: int | None = None) -> bool:
    """Whether a channel (other than ``other_than``) already has this name."""
    return (
        db.execute(
            conn,
            "SELECT 1 FROM notification_channel WHERE name = %s AND (%s::bigint IS NULL OR id <> %s)",
            (name, other_than, other_than),
        ).fetchone()
        is not None
    )


def get_channel(*, conn: psycopg.Connection, channel_id: int) -> dict[str, Any]:
    row = store.fetch_one(conn, _CHANNEL_OUT + " WHERE id = %s", (channel_id,))
    if row is None:
        raise NotFound(f"no channel {channel_id}")
    return row


def list_channels(*, conn: psycopg.Connection) -> list[dict[str, Any]]:
    return store.fetch(conn, _CHANNEL_OUT + " ORDER BY id")


def delete_channel(*, conn: psycopg.Connection, channel_id: int) -> None:
    """Disable a channel (its deliveries and attempts stay for the record) and forget its secret URL."""
    done = db.execute(
        conn,
        "UPDATE notification_channel SET enabled = false, url_sealed = '\\x'::bytea, "
        "name = name || '#deleted-' || id, updated_at = now() "
        "WHERE id = %s AND name NOT LIKE '%%#deleted-%%' RETURNING id",
        (channel_id,),
    ).fetchone()
    if done is None:
        raise NotFound(f"no channel {channel_id}")


# --- escalation policies and rosters -----------------------------------------------------------------------


def policy_owner(*, conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """``{"site": ...}`` of the escalation policy ``name`` (site None: every site), None when there is none."""
    return db.fetch_one(conn, "SELECT site FROM escalation_policy WHERE name = %s", (name,))


def roster_owner(*, conn: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """``{"site": ...}`` of the duty roster ``name`` (site None: every site), None when there is none."""
    return db.fetch_one(conn, "SELECT site FROM duty_roster WHERE name = %s", (name,))


def put_policy(*, conn: psycopg.Connection, spec: PolicySpec) -> dict[str, Any]:
    tiers = orjson.dumps([t.model_dump() for t in spec.tiers]).decode()
    policy_id = db.execute(
        conn,
        "INSERT INTO escalation_policy (name, site, area, min_priority, tiers, reminder_s, max_reminders, enabled) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET site = excluded.site, area = "
        "excluded.area, min_priority = excluded.min_priority, tiers = excluded.tiers, reminder_s = "
        "excluded.reminder_s, max_reminders = excluded.max_reminders, enabled = excluded.enabled, updated_at = now() "
        "RETURNING id",
        (spec.name, spec.site, spec.area, spec.min_priority, tiers, spec.reminder_s, spec.max_reminders, spec.enabled),
    ).fetchone()[0]
    return store.fetch_one(conn, "SELECT * FROM escalation_policy WHERE id = %s", (policy_id,))


def put_roster(*, conn: psycopg.Connection, spec: RosterSpec) -> dict[str, Any]:
    shifts = orjson.dumps([s.model_dump(mode="json") for s in spec.shifts]).decode()
    roster_id = db.execute(
        conn,
        "INSERT INTO duty_roster (name, site, area, role, tz, shifts) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT "
        "(name) DO UPDATE SET site = excluded.site, area = excluded.area, role = excluded.role, tz = excluded.tz, "
        "shifts = excluded.shifts, updated_at = now() RETURNING id",
        (spec.name, spec.site, spec.area, spec.role, spec.tz, shifts),
    ).fetchone()[0]
    return store.fetch_one(conn, "SELECT * FROM duty_roster WHERE id = %s", (roster_id,))


def apply_section(*, conn: psycopg.Connection, secret: str | Keyring, section: NotificationSection) -> dict[str, int]:
    """Apply the plant file's ``notifications:`` section idempotently (by name)."""
    for channel in section.channels:
        put_channel(conn=conn, secret=secret, spec=channel)
    for policy in section.escalation:
        put_policy(conn=conn, spec=policy)
    for roster in section.rosters:
        put_roster(conn=conn, spec=roster)
    return {"channels": len(section.channels), "escalation": len(section.escalation), "rosters": len(section.rosters)}


# --- people ---------------------------------------------------------------------------------------------------


def put_settings(
    *,
    conn: psycopg.Connection,
    user_id: int,
    lang: str = "zh-CN",
    channels: dict[str, bool] | None = None,
    quiet_hours: tuple[time, time] | None = None,
    min_priority: int = 1,
    email: str | None = None,
    phone: str | None = None,
    wecom_user: str | None = None,
) -> dict[str, Any]:
    chosen = {**DEFAULT_CHANNELS, **(channels or {})}
    start, end = quiet_hours or (None, None)
    conn.execute(
        "INSERT INTO notification_settings (user_id, lang, channels, quiet_start, quiet_end, min_priority, "
        "email, phone, wecom_user) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id) DO "
        "UPDATE SET lang = "
        "excluded.lang, channels = excluded.channels, quiet_start = excluded.quiet_start, quiet_end = "
        "excluded.quiet_end, min_priority = excluded.min_priority, email = coalesce(excluded.email, "
        "notification_settings.email), phone = coalesce(excluded.phone, notification_settings.phone), "
        "wecom_user = coalesce(excluded.wecom_user, notification_settings.wecom_user), updated_at = now()",
        (user_id, lang, orjson.dumps(chosen).decode(), start, end, min_priority, email, phone, wecom_user),
    )
    return get_settings(conn=conn, user_id=user_id)


def get_settings(*, conn: psycopg.Connection, user_id: int) -> dict[str, Any]:
    row = store.fetch_one(conn, "SELECT * FROM notification_settings WHERE user_id = %s", (user_id,))
    if row is None:
        return {
            "lang": "zh-CN",
            "channels": dict(DEFAULT_CHANNELS),
            "quiet_hours": None,
            "min_priority": 1,
            "email": None,
            "phone": None,
            "wecom_user": None,
        }
    quiet = (
        {"start": row["quiet_start"].strftime("%H:%M"), "end": row["quiet_end"].strftime("%H:%M")}
        if row["quiet_start"] is not None and row["quiet_end"] is not None
        else None
    )
    return {
        "lang": row["lang"],
        "channels": {**DEFAULT_CHANNELS, **row["channels"]},
        "quiet_hours": quiet,
        "min_priority": row["min_priority"],
        "email": row["email"],
        "phone": row["phone"],
        "wecom_user": row["wecom_user"],
    }


def add_subscription(
    *, conn: psycopg.Connection, user_id: int, endpoint: str, p256dh: str, auth: str, lang: str | None = None
) -> dict[str, Any]:
    """Store a browser's push subscription (the same endpoint again updates it and moves it to this user)."""
    return store.fetch_one(
        conn,
        "INSERT INTO push_subscription (user_id, endpoint, p256dh, auth, lang) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = "
        "excluded.auth, lang = excluded.lang, gone_at = NULL RETURNING id, endpoint, created_at, lang",
        (user_id, endpoint, p256dh, auth, lang),
    )


def list_subscriptions(*, conn: psycopg.Connection, user_id: int) -> list[dict[str, Any]]:
    return store.fetch(
        conn,
        "SELECT id, endpoint, created_at, lang, last_ok_at FROM push_subscription WHERE user_id = "
        "%s AND gone_at IS NULL ORDER BY id",
        (user_id,),
    )


def delete_subscription(*, conn: psycopg.Connection, user_id: int, subscription_id: int) -> None:
    done = db.execute(
        conn,
        "UPDATE push_subscription SET gone_at = now() WHERE id = %s AND user_id = %s AND gone_at IS NULL RETURNING id",
        (subscription_id, user_id),
    ).fetchone()
    if done is None:
        raise NotFound(f"no push subscription {subscription_id}")


# --- reading the record -----------------------------------------------------------------------------------


def list_notifications(
    *,
    conn: psycopg.Connection,
    sites: list[str] | None,
    alarm_id: int | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Outbox rows, newest first (``sites`` None: every site); one more than ``limit`` for the cursor."""
    return store.fetch(
        conn,
        "SELECT id, created_at, kind, alarm_id, site, area, priority, title, status, attempts, "
        "sent_at, drill, last_error FROM notification_outbox WHERE (%(sites)s::text[] IS NULL OR site = "
        "ANY(%(sites)s)) AND (%(alarm)s::bigint IS NULL OR alarm_id = %(alarm)s) AND (%(status)s::text "
        "IS NULL OR status = %(status)s) AND (%(after)s::bigint IS NULL OR id < %(after)s) ORDER BY id "
        "DESC LIMIT %(limit)s",
        {"sites": sites, "alarm": alarm_id, "status": status, "after": after, "limit": limit + 1},
    )


def get_notification(*, conn: psycopg.Connection, notification_id: int, sites: list[str] | None) -> dict[str, Any]:
    """One outbox row with its deliveries and every attempt of each."""
    row = store.fetch_one(
        conn,
        "SELECT * FROM notification_outbox WHERE id = %s AND (%s::text[] IS NULL OR site = ANY(%s))",
        (notification_id, sites, sites),
    )
    if row is None:
        raise NotFound(f"no notification {notification_id}")
    deliveries = store.fetch(
        conn,
        "SELECT id, recipient, channel, kind, lang, status, attempts, next_attempt_at, "
        "sent_at, last_error FROM notification_delivery WHERE outbox_id = %s ORDER BY id",
        (notification_id,),
    )
    tries = store.fetch(
        conn,
        "SELECT a.* FROM notification_attempt a JOIN notification_delivery d ON d.id = "
        "a.delivery_id WHERE d.outbox_id = %s ORDER BY a.id",
        (notification_id,),
    )
    for d in deliveries:
        d["tries"] = [t for t in tries if t["delivery_id"] == d["id"]]
    return {**row, "deliveries": deliveries}


def list_policies(*, conn: psycopg.Connection, sites: list[str] | None) -> list[dict[str, Any]]:
    return store.fetch(
        conn, "SELECT * FROM escalation_policy WHERE %s::text[] IS NULL OR site = ANY(%s) ORDER BY id", (sites, sites)
    )


def list_rosters(*, conn: psycopg.Connection, sites: list[str] | None) -> list[dict[str, Any]]:
    return store.fetch(
        conn, "SELECT * FROM duty_roster WHERE %s::text[] IS NULL OR site = ANY(%s) ORDER BY id", (sites, sites)
    )
