"""Outbox to deliveries: who gets each notification, over which channel, when; claims, attempts, retries.

Functions take the caller's connection and never commit; the notifier (``alerts.notifications.notifier``) runs
each in its own short transaction.

1. ``expand`` claims pending outbox rows (``FOR UPDATE SKIP LOCKED``) and writes one ``notification_delivery``
   per (outbox row, recipient, channel) (unique: expanding twice adds nothing). Group bots (WeCom, DingTalk,
   Feishu, webhooks) are recipients of their own; people come from the row's users and roles, roles resolved
   through the duty roster on shift (else every user with that role at the site). A person's settings choose
   their channels (Web Push subscriptions, e-mail, SMS), language, minimum priority and quiet hours; quiet
   hours delay, never drop, and never hold priority 4. During an alarm flood, alarm rows below priority 4 are
   ``grouped``: ``summarise`` sends one summary per flood and interval instead.
2. ``claim`` takes the most urgent due delivery and a token of its channel's bucket (``rate_per_s``, ``burst``
   in ``notification_channel``, updated under the row lock so the limit holds across worker processes: the
   ``limits`` package has no PostgreSQL storage, and an in-memory limiter would let two workers each send a
   robot's 20 messages a minute). No token: the delivery waits until one is due (queued, not dropped). The
   claim sets ``status = 'sending'`` and a lease, and commits before anything is sent.
3. ``finish`` records the attempt (time, channel, redacted target, result, error) and moves the delivery on:
   sent; again after a backoff; failed after ``max_attempts`` (rate limits do not count). A channel failing
   ``fail_alarm_after`` times in a row raises a system alarm, cleared by its next success.
4. ``requeue_lost`` gives deliveries whose lease ran out (their worker died) back to the queue, with an attempt
   of result ``lost``.

Delivery guarantee, honestly: **at least once per delivery row, at most once more for a row in flight when its
worker died.** A row is marked sent only after the provider answered; a row whose sender died after the request
left but before the answer was recorded cannot be told apart from one that never left (the chat-bot APIs have
no idempotency key and no way to ask "did you get it?"), so it is sent again after its lease. Every copy carries
the same delivery key (``X-EHS-Delivery`` header and ``delivery`` field on webhooks, Web Push ``Topic`` so a
push service replaces an undelivered copy); rows that were answered are never sent again, so a crash duplicates
at most the rows that were in flight (one per sender thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg

from alerts import service, store
from alerts.notifications import messages
from alerts.notifications.notify import SendResult
from core import db
from core.model import Severity, SubjectRef

GROUP_KINDS = ("wecom", "dingtalk", "feishu", "webhook")
PERSON_KINDS = ("email", "sms", "wecom_app")
#: The channel hint that selects a person channel (outbox ``channels``: wecom, dingtalk, feishu, sms, email, webpush).
PERSON_HINT = {"email": "email", "sms": "sms", "wecom_app": "wecom"}
NEEDS_ACK = ("active_unacked", "cleared_unacked", "latched_unacked")
CHANNEL_RULE = "notify.channel_failing"
DEFAULT_CHANNELS = {"webpush": True, "email": True, "wecom": True, "dingtalk": True, "feishu": True, "sms": True}


@dataclass(frozen=True, slots=True)
class Policy:
    """Tunables of delivery (from ``AlertSettings``)."""

    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    backoff_s: float = 5.0
    backoff_max_s: float = 600.0
    fail_alarm_after: int = 5
    group_interval: timedelta = timedelta(seconds=60)
    tz: str = "Asia/Shanghai"


# --- 1. expansion ------------------------------------------------------------------------------------------


def expand(*, conn: psycopg.Connection, now: datetime, policy: Policy, limit: int = 200) -> int:
    """Turn due pending outbox rows into deliveries; return how many rows were expanded."""
    rows = store.fetch(
        conn,
        "SELECT o.*, a.flood_id AS alarm_flood, f.ended_at AS flood_ended "
        "FROM notification_outbox o "
        "LEFT JOIN alarm a ON a.id = o.alarm_id LEFT JOIN alarm_flood f ON f.id = a.flood_id "
        "WHERE o.status = 'pending' AND o.next_attempt_at <= %s ORDER BY o.id LIMIT %s "
        "FOR UPDATE OF o SKIP LOCKED",
        (now, limit),
    )
    for row in rows:
        if (
            row["kind"] == "alarm"
            and row["alarm_flood"] is not None
            and row["flood_ended"] is None
            and (row["priority"] or 1) < 4
        ):
            conn.execute(
                "UPDATE notification_outbox SET status = 'grouped', flood_id = %s, expanded_at = %s WHERE id = %s",
                (row["alarm_flood"], now, row["id"]),
            )
            continue
        n = 0
        for delivery in deliveries_of(conn, row, now, policy):
            n += conn.execute(
                "INSERT INTO notification_delivery (outbox_id, recipient, channel, user_id, channel_id, "
                "subscription_id, kind, lang, priority, next_attempt_at, address) VALUES (%(outbox_id)s, "
                "%(recipient)s, %(channel)s, %(user_id)s, %(channel_id)s, %(subscription_id)s, %(kind)s, %(lang)s, "
                "%(priority)s, %(next_attempt_at)s, %(address)s) "
                "ON CONFLICT (outbox_id, recipient, channel) DO NOTHING",
                delivery,
            ).rowcount
        if n:
            conn.execute(
                "UPDATE notification_outbox SET status = 'sending', expanded_at = %s WHERE id = %s", (now, row["id"])
            )
        else:
            conn.execute(
                "UPDATE notification_outbox SET status = 'failed', expanded_at = %s, last_error = "
                "'no recipient and no channel for this notification' WHERE id = %s",
                (now, row["id"]),
            )
    return len(rows)


def deliveries_of(
    conn: psycopg.Connection, row: Mapping[str, Any], now: datetime, policy: Policy
) -> list[dict[str, Any]]:
    priority = int(row["priority"] or 1)
    hints = set(row["channels"] or [])
    base = {
        "outbox_id": row["id"],
        "priority": priority,
        "next_attempt_at": now,
        "subscription_id": None,
        "address": None,
    }
    if row.get("targets") is not None:
        return _explicit(conn, row, base)
    out = []
    for ch in store.fetch(
        conn,
        "SELECT id, kind FROM notification_channel WHERE enabled AND kind = ANY(%s) "
        "AND (site IS NULL OR site = %s) AND (area IS NULL OR area IS NOT DISTINCT FROM %s) "
        "AND min_priority <= %s AND (drills OR NOT %s) ORDER BY id",
        (sorted(hints & set(GROUP_KINDS)) + ["log"], row["site"], row["area"], priority, row["drill"]),
    ):
        out.append(
            {
                **base,
                "recipient": "group",
                "channel": f"channel:{ch['id']}",
                "user_id": None,
                "channel_id": ch["id"],
                "kind": ch["kind"],
                "lang": "zh-CN",
            }
        )
    person_channels = {
        c["kind"]: c["id"]
        for c in store.fetch(
            conn,
            "SELECT DISTINCT ON (kind) id, kind FROM notification_channel WHERE enabled AND kind = ANY(%s) AND "
            "(site IS NULL OR site = %s) AND (drills OR NOT %s) ORDER BY kind, site NULLS LAST, id",
            (list(PERSON_KINDS), row["site"], row["drill"]),
        )
    }
    for user in recipients(conn, row, now):
        settings = user_settings(conn, user["id"])
        if priority < settings["min_priority"] and priority < 4:
            continue
        when = after_quiet_hours(settings, now, policy.tz) if priority < 4 else now
        person = {
            **base,
            "recipient": f"user:{user['id']}",
            "user_id": user["id"],
            "next_attempt_at": when,
            "lang": settings["lang"],
        }
        enabled = settings["channels"]
        if "webpush" in hints and enabled.get("webpush", True):
            for sub in store.fetch(
                conn,
                "SELECT id, lang FROM push_subscription WHERE user_id = %s AND gone_at IS NULL ORDER BY id",
                (user["id"],),
            ):
                out.append(
                    {
                        **person,
                        "channel": f"webpush:{sub['id']}",
                        "channel_id": None,
                        "kind": "webpush",
                        "subscription_id": sub["id"],
                        "lang": sub["lang"] or settings["lang"],
                    }
                )
        for kind, address in (
            ("email", settings["email"]),
            ("sms", settings["phone"]),
            ("wecom_app", settings["wecom_user"]),
        ):
            hint = PERSON_HINT[kind]
            if hint in hints and address and enabled.get(hint, True) and kind in person_channels:
                out.append(
                    {
                        **person,
                        "channel": f"channel:{person_channels[kind]}",
                        "channel_id": person_channels[kind],
                        "kind": kind,
                    }
                )
    return out


def _explicit(conn: psycopg.Connection, row: Mapping[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """A row that names its targets (a report's delivery): one delivery per target whose channel is enabled;
    ``recipient`` is ``target:<index>`` into the row's ``targets``."""
    out = []
    for i, target in enumerate(row["targets"]):
        ch = store.fetch_one(
            conn, "SELECT id, kind FROM notification_channel WHERE name = %s AND enabled", (target["channel"],)
        )
        if ch is None:
            continue
        out.append(
            {
                **base,
                "recipient": f"target:{i}",
                "channel": f"channel:{ch['id']}",
                "user_id": None,
                "channel_id": ch["id"],
                "kind": ch["kind"],
                "lang": target.get("lang") or "zh-CN",
                "address": target.get("to"),
            }
        )
    return out


def attachments(conn: psycopg.Connection, outbox_id: int) -> list[tuple[str, bytes, str]]:
    """The files an outbox row carries (a report's, for e-mail targets): (filename, content, media type)."""
    return [
        (a["filename"], bytes(a["content"]), a["media_type"])
        for a in store.fetch(
            conn,
            "SELECT filename, content, media_type FROM notification_attachment WHERE outbox_id = %s ORDER BY id",
            (outbox_id,),
        )
    ]


def recipients(conn: psycopg.Connection, row: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The people of an outbox row: named users and the holders of its roles (duty roster on shift first), each
    only if they hold the row's site."""
    wanted = row["recipients"] or {}
    names = set(wanted.get("users") or [])
    ids: set[int] = set()
    for role in wanted.get("roles") or []:
        roster = store.fetch_one(
            conn,
            "SELECT * FROM duty_roster WHERE role = %s AND (site IS NULL OR site = %s) "
            "AND (area IS NULL OR area IS NOT DISTINCT FROM %s) ORDER BY area NULLS LAST, "
            "site NULLS LAST LIMIT 1",
            (role, row["site"], row["area"]),
        )
        if roster is not None:
            names |= on_duty(roster, now)
            continue
        ids |= {
            r["id"]
            for r in store.fetch(
                conn,
                "SELECT u.id FROM app_user u WHERE u.role = %s AND u.disabled_at IS NULL AND (u.all_sites OR "
                "EXISTS (SELECT 1 FROM site s WHERE s.code = %s AND s.id = ANY(u.site_ids)))",
                (role, row["site"]),
            )
        }
    if names:
        # a named person (roster, plan, policy) hears only of the sites they hold: a roster or plan naming
        # someone of another site does not leak that site's alarms to them
        ids |= {
            r["id"]
            for r in store.fetch(
                conn,
                "SELECT u.id FROM app_user u WHERE u.username = ANY(%s) AND u.disabled_at IS NULL AND (u.all_sites "
                "OR EXISTS (SELECT 1 FROM site s WHERE s.code = %s AND s.id = ANY(u.site_ids)))",
                (sorted(names), row["site"]),
            )
        }
    return [{"id": i} for i in sorted(ids)]


def on_duty(roster: Mapping[str, Any], now: datetime) -> set[str]:
    """Usernames on shift (and on call) at ``now``; a shift whose end is before its start runs past midnight."""
    local = now.astimezone(ZoneInfo(roster.get("tz") or "Asia/Shanghai"))
    names: set[str] = set()
    for shift in roster["shifts"] or []:
        start, end = time.fromisoformat(shift["start"]), time.fromisoformat(shift["end"])
        days = shift.get("days") or [1, 2, 3, 4, 5, 6, 7]
        t = local.time()
        if start <= end:
            inside = local.isoweekday() in days and start <= t < end
        else:  # overnight: started yesterday evening or starts this evening
            yesterday = (local - timedelta(days=1)).isoweekday()
            inside = (local.isoweekday() in days and t >= start) or (yesterday in days and t < end)
        if inside:
            names |= set(shift.get("users") or []) | set(shift.get("on_call") or [])
    return names


def user_settings(conn: psycopg.Connection, user_id: int) -> dict[str, Any]:
    row = store.fetch_one(conn, "SELECT * FROM notification_settings WHERE user_id = %s", (user_id,))
    if row is None:
        return {
            "lang": "zh-CN",
            "channels": dict(DEFAULT_CHANNELS),
            "quiet_start": None,
            "quiet_end": None,
            "min_priority": 1,
            "email": None,
            "phone": None,
            "wecom_user": None,
        }
    return row


def after_quiet_hours(settings: Mapping[str, Any], now: datetime, tz: str) -> datetime:
    """``now``, or the end of the person's quiet hours if ``now`` falls inside them."""
    start, end = settings.get("quiet_start"), settings.get("quiet_end")
    if start is None or end is None or start == end:
        return now
    local = now.astimezone(ZoneInfo(tz))
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return now
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(now.tzinfo)


# --- flood summaries ---------------------------------------------------------------------------------------


def summarise(*, conn: psycopg.Connection, now: datetime, policy: Policy) -> list[int]:
    """One summary outbox row per flood and interval for its grouped alarm rows; return the new rows' ids."""
    made = []
    for g in store.fetch(
        conn,
        "SELECT o.flood_id, f.site, f.area, f.drill, f.ended_at, ng.last_summary_at, "
        "array_agg(o.id ORDER BY o.id) AS ids FROM notification_outbox o JOIN alarm_flood f ON "
        "f.id = o.flood_id LEFT JOIN notification_group ng ON ng.flood_id = o.flood_id WHERE "
        "o.status = 'grouped' AND o.group_id IS NULL GROUP BY o.flood_id, f.site, f.area, f.drill, "
        "f.ended_at, ng.last_summary_at ORDER BY o.flood_id",  # two planners lock the floods' rows in one order
    ):
        if (
            g["ended_at"] is None
            and g["last_summary_at"] is not None
            and now - g["last_summary_at"] < policy.group_interval
        ):
            continue
        rows = store.fetch(
            conn,
            "SELECT o.*, a.title AS a_title, a.title_en AS a_title_en, a.source FROM "
            "notification_outbox o JOIN alarm a ON a.id = o.alarm_id WHERE o.id = ANY(%s) "
            "ORDER BY o.id FOR UPDATE OF o",
            (g["ids"],),
        )
        roles = sorted({r for row in rows for r in (row["recipients"] or {}).get("roles", [])})
        users = sorted({u for row in rows for u in (row["recipients"] or {}).get("users", [])})
        channels = sorted({c for row in rows for c in row["channels"] or []})
        text = messages.summary(
            {"area": g["area"]},
            [{"title": r["a_title"], "title_en": r["a_title_en"], "source": r["source"]} for r in rows],
        )
        outbox_id = db.execute(
            conn,
            "INSERT INTO notification_outbox (kind, flood_id, site, area, priority, recipients, channels, title, "
            "title_en, body, body_en, drill) VALUES ('summary', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            (
                g["flood_id"],
                g["site"],
                g["area"] or None,
                max(r["priority"] or 1 for r in rows),
                orjson.dumps({"roles": roles, "users": users}).decode(),
                orjson.dumps(channels).decode(),
                text["title"],
                text["title_en"],
                text["body"],
                text["body_en"],
                g["drill"],
            ),
        ).fetchone()[0]
        conn.execute("UPDATE notification_outbox SET group_id = %s WHERE id = ANY(%s)", (outbox_id, g["ids"]))
        conn.execute(
            "INSERT INTO notification_group (flood_id, last_summary_at, last_outbox_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (flood_id) DO UPDATE SET last_summary_at = excluded.last_summary_at, "
            "last_outbox_id = excluded.last_outbox_id",
            (g["flood_id"], now, outbox_id),
        )
        made.append(outbox_id)
    return made


# --- 2. claim ------------------------------------------------------------------------------------------------


class Again:
    """``claim`` put a delivery aside (its channel has no token yet, or its reminder was acknowledged): commit and
    claim again."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "outbox.AGAIN"


AGAIN = Again()
#: How many deliveries a sender puts aside (each in its own transaction) before it gives up for now.
CLAIM_TRIES = 20


def claim(*, conn: psycopg.Connection, now: datetime, worker: str, policy: Policy) -> dict[str, Any] | Again | None:
    """The most urgent due delivery with a token of its channel, marked ``sending`` under a lease; None when nothing
    is due; ``AGAIN`` when the most urgent one was put aside (no token: deferred until one is due; a reminder
    acknowledged meanwhile: skipped), so the caller commits and claims again.

    Lock order: one call locks one delivery row, then at most one of its channel row (the token) or its outbox row
    (closing a skipped reminder), never both and never a second channel or outbox row. ``finish`` locks the delivery,
    then its channel, then its outbox; a claim that went on to the next delivery in the same transaction held the
    first one's outbox or channel while waiting for the next one's (and a finishing sender held them the other way
    round): PostgreSQL found the cycle and aborted one side with "deadlock detected". Hence one delivery per
    transaction."""
    d = store.fetch_one(
        conn,
        "SELECT * FROM notification_delivery WHERE status = 'pending' AND next_attempt_at "
        "<= %s ORDER BY priority DESC, next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        (now,),
    )
    if d is None:
        return None
    o = store.fetch_one(
        conn,
        "SELECT o.kind, o.alarm_id, a.state FROM notification_outbox o LEFT JOIN alarm a "
        "ON a.id = o.alarm_id WHERE o.id = %s",
        (d["outbox_id"],),
    )
    if o["kind"] == "reminder" and o["state"] not in NEEDS_ACK:  # acknowledged meanwhile: stop reminding
        conn.execute(
            "UPDATE notification_delivery SET status = 'skipped', last_error = 'acknowledged' WHERE id = %s",
            (d["id"],),
        )
        _close_outbox(conn, d["outbox_id"], now)
        return AGAIN
    if d["channel_id"] is not None:
        wait = _take_token(conn, d["channel_id"], now)
        if wait > 0:
            conn.execute(
                "UPDATE notification_delivery SET next_attempt_at = %s WHERE id = %s",
                (now + timedelta(seconds=wait), d["id"]),
            )
            return AGAIN
    conn.execute(
        "UPDATE notification_delivery SET status = 'sending', attempts = attempts + 1, lease_until = %s, "
        "claimed_by = %s WHERE id = %s",
        (now + policy.lease, worker, d["id"]),
    )
    return {**d, "attempts": d["attempts"] + 1}


def _take_token(conn: psycopg.Connection, channel_id: int, now: datetime) -> float:
    """Take one token from the channel's bucket: 0, or the seconds until one is there (nothing taken)."""
    ch = store.fetch_one(
        conn,
        "SELECT tokens, tokens_at, rate_per_s, burst FROM notification_channel WHERE id = %s FOR UPDATE",
        (channel_id,),
    )
    if ch is None:
        return 0.0
    elapsed = max((now - ch["tokens_at"]).total_seconds(), 0.0)
    tokens = min(ch["burst"], ch["tokens"] + elapsed * ch["rate_per_s"])
    if tokens < 1.0:
        conn.execute(
            "UPDATE notification_channel SET tokens = %s, tokens_at = %s WHERE id = %s",
            (tokens, max(now, ch["tokens_at"]), channel_id),
        )
        return (1.0 - tokens) / ch["rate_per_s"]
    conn.execute(
        "UPDATE notification_channel SET tokens = %s, tokens_at = %s WHERE id = %s",
        (tokens - 1.0, max(now, ch["tokens_at"]), channel_id),
    )
    return 0.0


# --- 3. outcome -----------------------------------------------------------------------------------------------


def finish(
    *,
    conn: psycopg.Connection,
    delivery: Mapping[str, Any],
    result: SendResult,
    target: str,
    started: datetime,
    now: datetime,
    policy: Policy,
) -> str:
    """Record one attempt and move the delivery on; return its new status."""
    conn.execute(
        "INSERT INTO notification_attempt (delivery_id, started_at, finished_at, channel, target, result, "
        "error) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (delivery["id"], started, now, delivery["kind"], target, result.result, result.error),
    )
    if result.ok:
        status, next_at = "sent", None
        if delivery["subscription_id"] is not None:
            conn.execute(
                "UPDATE push_subscription SET last_ok_at = %s WHERE id = %s", (now, delivery["subscription_id"])
            )
    elif result.result == "gone":
        status, next_at = "failed", None
        conn.execute("UPDATE push_subscription SET gone_at = %s WHERE id = %s", (now, delivery["subscription_id"]))
    elif result.result == "rate_limited":
        status, next_at = "pending", now + timedelta(seconds=result.retry_after_s or 60.0)
    elif delivery["attempts"] >= policy.max_attempts:
        status, next_at = "failed", None
    else:
        status = "pending"
        next_at = now + timedelta(seconds=min(policy.backoff_s * 2 ** (delivery["attempts"] - 1), policy.backoff_max_s))
    conn.execute(
        "UPDATE notification_delivery SET status = %s, next_attempt_at = coalesce(%s, next_attempt_at), "
        "lease_until = NULL, sent_at = CASE WHEN %s THEN %s END, last_error = %s WHERE id = %s",
        (status, next_at, status == "sent", now, result.error, delivery["id"]),
    )
    if delivery["channel_id"] is not None and result.result in ("ok", "error"):
        _channel_health(conn, delivery["channel_id"], ok=result.ok, now=now, policy=policy)
    if status in ("sent", "failed"):
        _close_outbox(conn, delivery["outbox_id"], now)
    return status


def _close_outbox(conn: psycopg.Connection, outbox_id: int, now: datetime) -> None:
    # lock the row first: two senders finishing the last two deliveries of one row would otherwise each see the
    # other's delivery still 'sending' (uncommitted) and neither would close it
    conn.execute("SELECT 1 FROM notification_outbox WHERE id = %s FOR UPDATE", (outbox_id,))
    counts = dict(
        db.execute(
            conn,
            "SELECT status, count(*) FROM notification_delivery WHERE outbox_id = %s GROUP BY status",
            (outbox_id,),
        ).fetchall()
    )
    if counts.get("pending") or counts.get("sending"):
        return
    status = "sent" if counts.get("sent") or not counts.get("failed") else "failed"
    conn.execute(
        "UPDATE notification_outbox SET status = %s, sent_at = %s, attempts = %s WHERE id = %s AND status = 'sending'",
        (status, now, sum(counts.values()), outbox_id),
    )


def _channel_health(conn: psycopg.Connection, channel_id: int, *, ok: bool, now: datetime, policy: Policy) -> None:
    """Count consecutive failures; raise a system alarm at ``fail_alarm_after``, clear it on the next success."""
    ch = store.fetch_one(
        conn, "SELECT id, name, site, failures FROM notification_channel WHERE id = %s FOR UPDATE", (channel_id,)
    )
    subject = SubjectRef(ch["site"] or "_service", None, "notifier", f"channel_{ch['id']}")
    if ok:
        conn.execute("UPDATE notification_channel SET failures = 0, failing_since = NULL WHERE id = %s", (channel_id,))
        if ch["failures"] >= policy.fail_alarm_after:
            service.raise_system_alarm(
                conn=conn,
                rule=CHANNEL_RULE,
                subject=subject,
                severity=Severity.NORMAL,
                message=f"channel {ch['name']} delivers again",
                caused_by=f"channel:{ch['id']}",
                at=now,
                title="通知通道恢复",
                title_en="Notification channel recovered",
            )
        return
    failures = ch["failures"] + 1
    conn.execute(
        "UPDATE notification_channel SET failures = %s, failing_since = coalesce(failing_since, %s) WHERE id = %s",
        (failures, now, channel_id),
    )
    if failures == policy.fail_alarm_after:
        service.raise_system_alarm(
            conn=conn,
            rule=CHANNEL_RULE,
            subject=subject,
            severity=Severity.HIGH,
            message=f"notification channel {ch['name']} failed {failures} times in a row",
            at=now,
            caused_by=f"channel:{ch['id']}",
            title=f"通知通道故障: {ch['name']}",
            title_en=f"Notification channel failing: {ch['name']}",
        )


# --- 4. dead workers ------------------------------------------------------------------------------------------


def requeue_lost(*, conn: psycopg.Connection, now: datetime) -> list[int]:
    """Deliveries whose lease ran out (their worker died mid-send) go back to the queue; return their ids."""
    lost = store.fetch(
        conn,
        "UPDATE notification_delivery d SET status = 'pending', next_attempt_at = %s, lease_until = NULL FROM "
        "(SELECT id FROM notification_delivery WHERE status = 'sending' AND lease_until < %s ORDER BY id "
        "FOR UPDATE SKIP LOCKED) l WHERE d.id = l.id RETURNING d.id, d.kind, d.lease_until, d.claimed_by",
        (now, now),
    )
    for d in lost:
        conn.execute(
            "INSERT INTO notification_attempt (delivery_id, started_at, finished_at, channel, target, result, "
            "error) VALUES (%s, %s, %s, %s, %s, 'lost', %s)",
            (
                d["id"],
                now,
                now,
                d["kind"],
                "-",
                f"worker {d['claimed_by']} died during the send; the "
                "provider may have received it: sent again (at least once)",
            ),
        )
    return [d["id"] for d in lost]


def context(conn: psycopg.Connection, outbox_id: int) -> dict[str, Any]:
    """What ``messages.compose`` needs for one outbox row: the row, its alarm, names and unit."""
    row = store.fetch_one(conn, "SELECT * FROM notification_outbox WHERE id = %s", (outbox_id,))
    alarm = store.fetch_one(conn, "SELECT * FROM alarm WHERE id = %s", (row["alarm_id"],)) if row["alarm_id"] else None
    names = (
        store.fetch_one(
            conn,
            "SELECT s.name AS site_name, ar.name AS area_name, p.name AS point_name, p.unit FROM site s LEFT JOIN "
            "area ar ON ar.site_id = s.id AND ar.code = %s LEFT JOIN device d ON d.site_id = s.id AND d.code = %s "
            "LEFT JOIN point p ON p.device_id = d.id AND p.key = %s WHERE s.code = %s",
            (row["area"], (alarm or {}).get("device"), (alarm or {}).get("point"), row["site"]),
        )
        or {}
    )
    return {"outbox": row, "alarm": alarm, **names}


def delivery_target(conn: psycopg.Connection, delivery: Mapping[str, Any]) -> dict[str, Any]:
    """Where a delivery goes: the channel row (sealed URL) or the push subscription, and the person's address."""
    out: dict[str, Any] = {"channel": None, "subscription": None, "to": None}
    if delivery["channel_id"] is not None:
        out["channel"] = store.fetch_one(
            conn, "SELECT * FROM notification_channel WHERE id = %s", (delivery["channel_id"],)
        )
    if delivery["subscription_id"] is not None:
        out["subscription"] = store.fetch_one(
            conn, "SELECT * FROM push_subscription WHERE id = %s", (delivery["subscription_id"],)
        )
    if delivery["user_id"] is not None and delivery["kind"] in PERSON_KINDS:
        s = user_settings(conn, delivery["user_id"])
        out["to"] = {"email": s["email"], "sms": s["phone"], "wecom_app": s["wecom_user"]}[delivery["kind"]]
    if delivery.get("address"):
        out["to"] = delivery["address"]
    return out
