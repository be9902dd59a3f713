"""Report schedules: every day, week or month a report of the period that just ended (local midnight to local
midnight in the site's time zone; weeks start on Monday), or an incident report after each incident once it is
closed (an alarm that started a response plan, or a flood). Run in the alerts worker's process by ``Scheduler``,
a thread of its own, so that a report never delays alarm handling.

At least once: each (schedule, period or incident) gets one slot row; whoever inserts it runs the report. A slot
whose run failed, or has been running longer than ``LEASE`` (its worker died), is run again, up to
``MAX_ATTEMPTS`` times. A failed run raises the alarm ``report.failed`` for the site (cleared by the schedule's next
success); a period not reported ``LATE_AFTER`` after it ended raises ``report.late``. A finished run goes to the
schedule's delivery targets (reports/delivery.py); a target that fails raises ``report.delivery``.

A period's report is due at the schedule's local time (``at_local``, in the site's zone) on the day the period
ends (a daily report at 06:00 covers yesterday; before 06:00 the day before yesterday is the latest due); it is
late when no run of it has succeeded ``grace`` after that. An incident schedule is late when an incident closed
more than ``grace`` ago without its report. Schedules come from the console, the API or the plant file's
``reports:`` section (reports/config.py); ``managed_by`` says which.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts import service as alarms
from core import audit
from core.clock import Clock
from core.model import Severity, SubjectRef
from reports import service
from reports.context import NotFound, ReportError, one, rows
from reports.delivery import Delivery, deliver
from reports.model import Params
from reports.registry import KINDS
from reports.render import FORMATS

_LOGGER = logging.getLogger(__name__)
EVERY = ("daily", "weekly", "monthly", "incident")
#: How the plant file and the API name the cadences (``after_incident`` is stored as ``incident``).
CADENCES = {"daily": "daily", "weekly": "weekly", "monthly": "monthly", "after_incident": "incident"}
MANAGERS = ("console", "api", "config")
LEASE = timedelta(minutes=15)
MAX_ATTEMPTS = 3
LATE_AFTER = timedelta(hours=2)
#: Incidents older than this when a schedule is created are not reported by it.
INCIDENT_LOOKBACK = timedelta(days=1)


def last_period(every: str, now: datetime, timezone: str, at: time = time(0)) -> tuple[datetime, datetime]:
    """The latest period due by ``now``: yesterday, last week (Monday to Monday) or last month, from local
    midnight to local midnight in ``timezone``, once the local time ``at`` of its last day has passed."""
    tz = ZoneInfo(timezone)
    local = now.astimezone(tz)
    today = local.date()
    if local.replace(tzinfo=None).time() < at:  # today's report is not due yet: the latest due ended a day earlier
        today -= timedelta(days=1)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=tz)

    if every == "daily":
        return midnight(today - timedelta(days=1)), midnight(today)
    if every == "weekly":
        monday = today - timedelta(days=today.weekday())
        return midnight(monday - timedelta(days=7)), midnight(monday)
    if every == "monthly":
        first = today.replace(day=1)
        previous = (first - timedelta(days=1)).replace(day=1)
        return midnight(previous), midnight(first)
    raise ValueError(f"no period for {every!r}")


def due_at(until: datetime, at: time, timezone: str) -> datetime:
    """When the report of a period ending at ``until`` is due: the local time ``at`` of the day it ends."""
    tz = ZoneInfo(timezone)
    day = until.astimezone(tz).date()
    return datetime.combine(day, at, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    name: str
    kind: str
    site: str
    every: str
    formats: tuple[str, ...] = ("pdf", "xlsx")
    areas: tuple[str, ...] | None = None
    lang: str = "zh-CN"
    deliver_to: tuple[str, ...] = ()  # notification channel names, or "channel:address" for e-mail
    at_local: time = time(0)  # the local time the report of a period is due on the day the period ends
    grace: timedelta = LATE_AFTER  # after its due time (or the incident's close) a missing report is late
    managed_by: str = "console"  # console, api or config (the plant file)


_FIELDS = ("kind", "site", "areas", "every", "formats", "lang", "deliver_to", "at_local", "grace", "enabled")


def check_spec(spec: ScheduleSpec) -> None:
    """Refuse a schedule that cannot run (no database needed)."""
    if spec.kind not in KINDS:
        raise ReportError(f"unknown report {spec.kind!r}; known: {', '.join(KINDS)}")
    every = CADENCES.get(spec.every, spec.every)
    if every not in EVERY:
        raise ReportError(f"every must be one of {', '.join(CADENCES)}")
    if (every == "incident") != (KINDS[spec.kind].subject == "incident"):
        raise ReportError(
            "incident reports are scheduled 'after_incident' ('incident'); period reports daily, weekly or monthly"
        )
    fits = KINDS[spec.kind].cadences
    if fits is not None and not any(CADENCES[c] == every for c in fits):
        raise ReportError(f"{spec.kind!r} reports are scheduled {' or '.join(sorted(fits))}")
    if not spec.formats or set(spec.formats) - set(FORMATS):
        raise ReportError(f"formats must be some of {', '.join(FORMATS)}")
    if spec.grace < timedelta(0):
        raise ReportError("grace must not be negative")
    if spec.managed_by not in MANAGERS:
        raise ReportError(f"managed_by must be one of {', '.join(MANAGERS)}")


def put_schedule(conn: psycopg.Connection, *, spec: ScheduleSpec, actor: str) -> dict[str, Any]:
    """Create or replace a schedule (audited; an unchanged schedule is left alone and not audited again).
    The returned row's ``changed`` says whether anything was written."""
    spec = dataclasses.replace(spec, every=CADENCES.get(spec.every, spec.every))
    check_spec(spec)
    if one(conn, "SELECT 1 AS x FROM site WHERE code = %s", (spec.site,)) is None:
        raise NotFound(f"no site {spec.site!r}")
    wanted = {
        "kind": spec.kind,
        "site": spec.site,
        "areas": list(spec.areas) if spec.areas else None,
        "every": spec.every,
        "formats": list(spec.formats),
        "lang": spec.lang,
        "deliver_to": list(spec.deliver_to),
        "at_local": spec.at_local,
        "grace": spec.grace,
        "enabled": True,
    }
    old = one(conn, "SELECT * FROM report_schedule WHERE name = %s FOR UPDATE", (spec.name,))
    if old is not None and all(old[k] == wanted[k] for k in _FIELDS) and old["managed_by"] == spec.managed_by:
        return {**old, "changed": False}
    row = one(
        conn,
        "INSERT INTO report_schedule (name, kind, site, areas, every, formats, lang, deliver_to, "
        "created_by, at_local, grace, managed_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET "
        "kind = excluded.kind, site = excluded.site, areas = excluded.areas, every = excluded.every, "
        "formats = excluded.formats, lang = excluded.lang, deliver_to = excluded.deliver_to, "
        "at_local = excluded.at_local, grace = excluded.grace, managed_by = excluded.managed_by, "
        "enabled = true, updated_at = now() RETURNING *",
        (
            spec.name,
            spec.kind,
            spec.site,
            list(spec.areas) if spec.areas else None,
            spec.every,
            list(spec.formats),
            spec.lang,
            list(spec.deliver_to),
            actor,
            spec.at_local,
            spec.grace,
            spec.managed_by,
        ),
    )
    detail = {k: row[k] for k in ("kind", "site", "areas", "every", "formats", "lang", "deliver_to")}
    detail |= {"at_local": row["at_local"].isoformat(), "grace_s": int(row["grace"].total_seconds())}
    audit.append(
        conn,
        actor=actor,
        action="config.report_schedule.put",
        target=f"report_schedule:{spec.name}",
        detail={**detail, "managed_by": spec.managed_by},
    )
    return {**row, "changed": True}


def disable_schedule(conn: psycopg.Connection, *, name: str, actor: str) -> bool:
    """Stop a schedule without losing its record (audited); False if it was disabled already."""
    row = one(
        conn,
        "UPDATE report_schedule SET enabled = false, updated_at = now() WHERE name = %s AND enabled RETURNING id",
        (name,),
    )
    if row is None:
        return False
    audit.append(conn, actor=actor, action="config.report_schedule.disable", target=f"report_schedule:{name}")
    return True


def schedule_exists(conn: psycopg.Connection, name: str) -> bool:
    return one(conn, "SELECT 1 AS found FROM report_schedule WHERE name = %s", (name,)) is not None


def get_schedule(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM report_schedule WHERE name = %s", (name,))
    if row is None:
        raise NotFound(f"no schedule {name!r}")
    return row


def remove_schedule(conn: psycopg.Connection, *, name: str, actor: str) -> None:
    """Delete a schedule and its slots (its runs and files stay in the archive); audited."""
    if one(conn, "DELETE FROM report_schedule WHERE name = %s RETURNING id", (name,)) is None:
        raise NotFound(f"no schedule {name!r}")
    audit.append(conn, actor=actor, action="config.report_schedule.remove", target=f"report_schedule:{name}")


def list_schedules(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return rows(conn, "SELECT * FROM report_schedule ORDER BY name")


def _due(conn: psycopg.Connection, schedule: dict[str, Any], now: datetime) -> list[tuple[str, Params]]:
    """(slot key, parameters) of what the schedule should have made by ``now``."""
    if schedule["every"] != "incident":
        tz = one(conn, "SELECT timezone FROM site WHERE code = %s", (schedule["site"],))["timezone"]
        since, until = last_period(schedule["every"], now, tz, schedule["at_local"])
        return [
            (
                since.isoformat(),
                Params(
                    site=schedule["site"],
                    since=since,
                    until=until,
                    areas=tuple(schedule["areas"]) if schedule["areas"] else None,
                    lang=schedule["lang"],
                ),
            )
        ]
    # incidents whose slot is settled (reported, or out of attempts) are left out, so a pass stays short
    found = rows(
        conn,
        """
        SELECT key, alarm_id, flood_id FROM (
            SELECT 'alarm:' || id AS key, id AS alarm_id, NULL::bigint AS flood_id FROM alarm
            WHERE site = %(site)s AND closed_at IS NOT NULL AND plan_level IS NOT NULL AND NOT drill
              AND closed_at > %(after)s AND flood_id IS NULL
            UNION ALL
            SELECT 'flood:' || id, NULL, id FROM alarm_flood
            WHERE site = %(site)s AND ended_at IS NOT NULL AND NOT drill AND ended_at > %(after)s) AS i
        WHERE NOT EXISTS (SELECT 1 FROM report_schedule_slot s LEFT JOIN report_run r ON r.id = s.run_id
                          WHERE s.schedule_id = %(id)s AND s.key = i.key
                            AND (r.status = 'done' OR s.attempts >= %(max)s))
        ORDER BY key""",
        {
            "site": schedule["site"],
            "after": schedule["created_at"] - INCIDENT_LOOKBACK,
            "id": schedule["id"],
            "max": MAX_ATTEMPTS,
        },
    )
    out = []
    for f in found:
        params = service.make_params(
            conn,
            kind=schedule["kind"],
            site=schedule["site"],
            lang=schedule["lang"],
            alarm_id=f["alarm_id"],
            flood_id=f["flood_id"],
            now=now,
        )
        out.append((f["key"], params))
    return out


def _claim(conn: psycopg.Connection, schedule: dict[str, Any], key: str, now: datetime) -> bool:
    """Take the slot if nobody has, or if its run failed or stalled (and attempts remain)."""
    taken = one(
        conn,
        "INSERT INTO report_schedule_slot (schedule_id, key, attempts) VALUES (%s, %s, 1) "
        "ON CONFLICT DO NOTHING RETURNING key",
        (schedule["id"], key),
    )
    if taken:
        return True
    slot = one(
        conn,
        "SELECT s.attempts, r.status, r.started_at, r.created_at FROM report_schedule_slot s LEFT JOIN "
        "report_run r ON r.id = s.run_id WHERE s.schedule_id = %s AND s.key = %s FOR UPDATE OF s SKIP "
        "LOCKED",
        (schedule["id"], key),
    )
    if slot is None or slot["attempts"] >= MAX_ATTEMPTS:
        return False
    stalled = slot["status"] in ("queued", "running") and (slot["started_at"] or slot["created_at"]) < now - LEASE
    if slot["status"] == "failed" or stalled:
        conn.execute(
            "UPDATE report_schedule_slot SET attempts = attempts + 1 WHERE schedule_id = %s AND key = %s",
            (schedule["id"], key),
        )
        return True
    return False


def tick(connect: service.Connect, *, clock: Clock, delivery: Delivery | None = None) -> list[dict[str, Any]]:
    """Run what is due now (each slot by one worker), deliver what was made; return the runs made."""
    made = []
    now = clock.now()
    with connect() as conn:
        schedules = rows(conn, "SELECT * FROM report_schedule WHERE enabled ORDER BY id")
    for schedule in schedules:
        with connect() as conn:
            try:
                due = _due(conn, schedule, now)
            except ReportError as exc:
                _LOGGER.warning("schedule %s: %s", schedule["name"], exc)
                continue
        for key, params in due:
            with connect() as conn, conn.transaction():
                if not _claim(conn, schedule, key, now):
                    continue
                run = service.create_run(
                    conn,
                    kind=schedule["kind"],
                    params=params,
                    formats=schedule["formats"],
                    actor=f"system:reports:{schedule['name']}",
                    schedule=schedule["name"],
                )
                conn.execute(
                    "UPDATE report_schedule_slot SET run_id = %s WHERE schedule_id = %s AND key = %s",
                    (run["id"], schedule["id"], key),
                )
            done = service.execute(connect, run["id"], clock=clock)
            _alarm(connect, schedule, done, clock.now())
            if done["status"] == "done" and schedule["deliver_to"] and delivery is not None:
                _deliver(connect, schedule, done, delivery, clock.now())
            made.append(done)
        _late(connect, schedule, due, clock.now())
    return made


def _subject(schedule: dict[str, Any]) -> SubjectRef:
    return SubjectRef(schedule["site"], None, None, None)


def _alarm(connect: service.Connect, schedule: dict[str, Any], run: dict[str, Any], now: datetime) -> None:
    """A failed run raises ``report.failed`` (one per schedule); a successful one clears it."""
    failed = run["status"] != "done"
    with connect() as conn, conn.transaction():
        alarms.raise_system_alarm(
            conn=conn,
            rule=f"report.failed.{schedule['name']}",
            subject=_subject(schedule),
            severity=Severity.MEDIUM if failed else Severity.NORMAL,
            caused_by=f"report_run:{run['id']}",
            at=now,
            message=(run["error"] or "")[:500] if failed else "report made",
            title=f"报表生成失败: {schedule['name']}",
            title_en=f"Report failed: {schedule['name']}",
        )


def _deliver(
    connect: service.Connect, schedule: dict[str, Any], run: dict[str, Any], delivery: Delivery, now: datetime
) -> None:
    """Queue the run for the schedule's targets in the notification outbox; a target naming no enabled channel
    raises ``report.delivery.NAME`` (what fails later is the outbox's: retried, then its channel-health alarm)."""
    with connect() as conn, conn.transaction():
        outcomes = deliver(conn, run=run, targets=schedule["deliver_to"], delivery=delivery, now=now)
    failed = [o for o in outcomes if o["status"] == "failed"]
    with connect() as conn, conn.transaction():
        alarms.raise_system_alarm(
            conn=conn,
            rule=f"report.delivery.{schedule['name']}",
            subject=_subject(schedule),
            severity=Severity.MEDIUM if failed else Severity.NORMAL,
            caused_by=f"report_run:{run['id']}",
            at=now,
            message="; ".join(f"{o['target']}: {o['error']}" for o in failed)[:500] if failed else "queued",
            title=f"报表发送失败: {schedule['name']}",
            title_en=f"Report not delivered: {schedule['name']}",
        )


def _late(connect: service.Connect, schedule: dict[str, Any], due: list[tuple[str, Params]], now: datetime) -> None:
    """``report.late``: a period whose report has not succeeded ``grace`` after its due time, or an incident closed
    more than ``grace`` ago without its report; cleared (severity normal) once that is no longer so."""
    with connect() as conn, conn.transaction():
        if schedule["every"] == "incident":
            pending = _late_incidents(conn, schedule, now)
            late = bool(pending)
            message = f"no report for {', '.join(pending[:5])}" if late else "on time"
        else:
            if not due:
                return
            key, params = due[-1]
            tz = one(conn, "SELECT timezone FROM site WHERE code = %s", (schedule["site"],))["timezone"]
            done = one(
                conn,
                "SELECT r.status FROM report_schedule_slot s JOIN report_run r ON r.id = s.run_id "
                "WHERE s.schedule_id = %s AND s.key = %s",
                (schedule["id"], key),
            )
            deadline = due_at(params.until, schedule["at_local"], tz) + schedule["grace"]
            late = (done is None or done["status"] != "done") and now > deadline
            local = params.since.astimezone(ZoneInfo(tz))
            message = f"no report for the period from {local:%Y-%m-%d %H:%M} ({tz})" if late else "on time"
        alarms.raise_system_alarm(
            conn=conn,
            rule=f"report.late.{schedule['name']}",
            subject=_subject(schedule),
            severity=Severity.MEDIUM if late else Severity.NORMAL,
            caused_by=f"report_schedule:{schedule['name']}",
            at=now,
            message=message,
            title=f"报表迟到: {schedule['name']}",
            title_en=f"Report late: {schedule['name']}",
        )


def _late_incidents(conn: psycopg.Connection, schedule: dict[str, Any], now: datetime) -> list[str]:
    """Incidents of an ``incident`` schedule closed more than its grace ago without a finished report."""
    found = rows(
        conn,
        """
        SELECT key FROM (
            SELECT 'alarm:' || id AS key, closed_at AS at FROM alarm
            WHERE site = %(site)s AND closed_at IS NOT NULL AND plan_level IS NOT NULL AND NOT drill
              AND closed_at > %(after)s AND flood_id IS NULL
            UNION ALL
            SELECT 'flood:' || id, ended_at FROM alarm_flood
            WHERE site = %(site)s AND ended_at IS NOT NULL AND NOT drill AND ended_at > %(after)s) AS i
        WHERE i.at < %(deadline)s
          AND NOT EXISTS (SELECT 1 FROM report_schedule_slot s JOIN report_run r ON r.id = s.run_id
                          WHERE s.schedule_id = %(id)s AND s.key = i.key AND r.status = 'done')
        ORDER BY key""",
        {
            "site": schedule["site"],
            "after": schedule["created_at"] - INCIDENT_LOOKBACK,
            "deadline": now - schedule["grace"],
            "id": schedule["id"],
        },
    )
    return [f["key"] for f in found]


class Scheduler:
    """Runs ``tick`` every ``interval_s`` in a thread of its own (started by the alerts worker's process)."""

    def __init__(
        self, database_url: str, *, clock: Clock, delivery: Delivery | None = None, interval_s: float = 60.0
    ) -> None:
        self.url, self.clock, self.delivery, self.interval_s = database_url, clock, delivery, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="report-scheduler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                tick(lambda: psycopg.connect(self.url), clock=self.clock, delivery=self.delivery)
            except Exception:  # noqa: BLE001 - the loop outlives a database outage; logged once per failure
                _LOGGER.exception("report scheduler pass failed")
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
