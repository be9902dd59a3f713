"""Escalation until acknowledged: policies as data, one ``tick`` over the unacknowledged alarms.

A policy (``escalation_policy``; plant file ``escalation:`` section or the API) applies to a site and area (or
all) from a minimum priority. Its tiers say who is told how long after the alarm was raised if nobody has
acknowledged it, for example::

    tiers: [{after_s: 300, roles: [ehs_manager], channels: [wecom, webpush]},
            {after_s: 900, roles: [plant_manager], channels: [sms, webpush, dingtalk]}]
    reminder_s: 300          # then remind everyone told so far every 5 minutes, at most max_reminders times

The first notification (tier 0, the area owner at once) is the alarm's own, queued by the engine. A tier is an
``escalate`` event on the alarm (``alerts.service.escalate``) plus its outbox row; reminders are outbox rows of
kind ``reminder`` with the recipients of the alarm's notifications so far. Acknowledging stops both: only alarms
that still need an acknowledgement are looked at, and a queued reminder of an acknowledged alarm is skipped at
send time. Drills never escalate (they notify only the recipients the drill names). Quiet hours never hold
priority 4 (``alerts.notifications.outbox``).

Time comes in as ``now`` (the worker's clock), so tests drive escalation with a controllable clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from alerts import service, store
from alerts.config import NotifySpec
from alerts.notifications.outbox import NEEDS_ACK
from core import db


def policy_for(conn: psycopg.Connection, alarm: dict[str, Any]) -> dict[str, Any] | None:
    """The most specific enabled policy for the alarm's site, area and priority."""
    return store.fetch_one(
        conn,
        "SELECT * FROM escalation_policy WHERE enabled AND (site IS NULL OR site = %s) AND "
        "(area IS NULL OR area IS NOT DISTINCT FROM %s) AND min_priority <= %s ORDER BY "
        "area NULLS LAST, site NULLS LAST, min_priority DESC, id LIMIT 1",
        (alarm["site"], alarm["area"], alarm["priority"]),
    )


def tick(*, conn: psycopg.Connection, now: datetime, limit: int = 500) -> dict[str, int]:
    """Queue the escalations and reminders due at ``now``; return how many of each."""
    done = {"escalations": 0, "reminders": 0}
    if not db.execute(conn, "SELECT EXISTS (SELECT 1 FROM escalation_policy WHERE enabled)").fetchone()[0]:
        return done  # the common case between configurations: one query, not one per alarm
    alarms = store.fetch(
        conn,
        "SELECT a.id, a.site, a.area, a.priority, a.last_raised_at, a.raised_at, "
        "e.activation_at, e.tiers_done, e.reminders, e.last_sent_at FROM alarm a LEFT JOIN "
        "alarm_escalation e ON e.alarm_id = a.id WHERE a.closed_at IS NULL AND NOT a.drill AND "
        "a.state = ANY(%s) ORDER BY a.id LIMIT %s",
        (list(NEEDS_ACK), limit),
    )
    for alarm in alarms:
        policy = policy_for(conn, alarm)
        if policy is None:
            continue
        activation = alarm["last_raised_at"] or alarm["raised_at"]
        if activation is None:
            continue
        if alarm["activation_at"] != activation:  # first look at this activation: start its clock
            conn.execute(
                "INSERT INTO alarm_escalation (alarm_id, activation_at, policy_id, tiers_done, reminders, "
                "last_sent_at) VALUES (%s, %s, %s, 0, 0, %s) ON CONFLICT (alarm_id) DO UPDATE SET "
                "activation_at = excluded.activation_at, policy_id = excluded.policy_id, tiers_done = 0, "
                "reminders = 0, last_sent_at = excluded.last_sent_at",
                (alarm["id"], activation, policy["id"], activation),
            )
            alarm.update(tiers_done=0, reminders=0, last_sent_at=activation)
        tiers = policy["tiers"] or []
        tiers_done, last_sent = alarm["tiers_done"], alarm["last_sent_at"]
        while tiers_done < len(tiers) and now - activation >= timedelta(seconds=float(tiers[tiers_done]["after_s"])):
            tier = tiers[tiers_done]
            service.escalate(
                conn=conn,
                alarm_id=alarm["id"],
                now=now,
                tier=tiers_done + 1,
                notify=NotifySpec(
                    roles=tier.get("roles", []), users=tier.get("users", []), channels=tier.get("channels", [])
                ),
            )
            tiers_done, last_sent = tiers_done + 1, now
            done["escalations"] += 1
        reminders = alarm["reminders"]
        if (
            policy["reminder_s"]
            and reminders < policy["max_reminders"]
            and tiers_done == alarm["tiers_done"]
            and now - last_sent >= timedelta(seconds=policy["reminder_s"])
        ):
            _remind(conn, alarm["id"], now)
            reminders, last_sent = reminders + 1, now
            done["reminders"] += 1
        conn.execute(
            "UPDATE alarm_escalation SET tiers_done = %s, reminders = %s, last_sent_at = %s WHERE alarm_id = %s",
            (tiers_done, reminders, last_sent, alarm["id"]),
        )
    return done


def _remind(conn: psycopg.Connection, alarm_id: int, now: datetime) -> int:
    """A reminder to everyone the alarm's notifications have reached so far (its outbox rows' recipients)."""
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (alarm_id,))
    rows = store.fetch(
        conn,
        "SELECT recipients, channels FROM notification_outbox WHERE alarm_id = %s AND kind IN "
        "('alarm', 'plan', 'reminder')",
        (alarm_id,),
    )
    roles = sorted({r for row in rows for r in (row["recipients"] or {}).get("roles", [])})
    users = sorted({u for row in rows for u in (row["recipients"] or {}).get("users", [])})
    channels = sorted({c for row in rows for c in row["channels"] or []})
    return db.execute(
        conn,
        "INSERT INTO notification_outbox (kind, alarm_id, site, area, priority, recipients, channels, title, "
        "title_en, body, body_en, drill, created_at) VALUES ('reminder', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "false, %s) RETURNING id",
        (
            alarm_id,
            alarm["site"],
            alarm["area"],
            alarm["priority"],
            orjson.dumps({"roles": roles, "users": users}).decode(),
            orjson.dumps(channels).decode(),
            alarm["title"],
            alarm["title_en"] or alarm["title"],
            alarm["message"],
            alarm["message"],
            now,
        ),
    ).fetchone()[0]
