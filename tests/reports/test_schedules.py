"""Report schedules: the period that just ended across month ends, year ends, summer time and time zones; one run
per period however often the scheduler passes; a failed run retried (at least once) up to its attempts and raised
as an alarm; a late period raised as an alarm; an incident report after each closed incident."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest

from core.clock import FrozenClock
from reports import schedules
from reports.schedules import ScheduleSpec, last_period
from tests.api.conftest import SITE

SH, BERLIN = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("every", "now", "tz", "since", "until"),
    [
        # half past midnight on April 1st in Shanghai is still March 31st in UTC: the month that ended is March
        (
            "monthly",
            datetime(2026, 3, 31, 16, 30, tzinfo=UTC),
            "Asia/Shanghai",
            datetime(2026, 3, 1, tzinfo=SH),
            datetime(2026, 4, 1, tzinfo=SH),
        ),
        # half past eleven on March 31st in Shanghai: March has not ended, February has
        (
            "monthly",
            datetime(2026, 3, 31, 15, 30, tzinfo=UTC),
            "Asia/Shanghai",
            datetime(2026, 2, 1, tzinfo=SH),
            datetime(2026, 3, 1, tzinfo=SH),
        ),
        (
            "monthly",
            datetime(2027, 1, 1, 0, 5, tzinfo=SH),
            "Asia/Shanghai",
            datetime(2026, 12, 1, tzinfo=SH),
            datetime(2027, 1, 1, tzinfo=SH),
        ),
        (
            "daily",
            datetime(2026, 3, 30, 0, 5, tzinfo=BERLIN),
            "Europe/Berlin",  # the 23-hour day before
            datetime(2026, 3, 29, tzinfo=BERLIN),
            datetime(2026, 3, 30, tzinfo=BERLIN),
        ),
        (
            "weekly",
            datetime(2026, 3, 9, 0, 0, tzinfo=SH),
            "Asia/Shanghai",  # Monday 00:00 local
            datetime(2026, 3, 2, tzinfo=SH),
            datetime(2026, 3, 9, tzinfo=SH),
        ),
        (
            "weekly",
            datetime(2026, 3, 8, 23, 59, tzinfo=SH),
            "Asia/Shanghai",
            datetime(2026, 2, 23, tzinfo=SH),
            datetime(2026, 3, 2, tzinfo=SH),
        ),
    ],
)
def test_the_period_that_just_ended(every: str, now: datetime, tz: str, since: datetime, until: datetime) -> None:
    got = last_period(every, now, tz)
    assert got == (since, until)
    assert got[0].utcoffset() == since.utcoffset()


def _connect(url: str):
    return lambda: psycopg.connect(url)


@pytest.mark.db
def test_a_monthly_schedule_runs_once_per_month(month_db) -> None:
    url, _ = month_db
    with psycopg.connect(url) as conn:
        schedules.put_schedule(
            conn,
            spec=ScheduleSpec("ww-monthly", "alarm_month", SITE, "monthly", ("csv",), ("wastewater",)),
            actor="user:admin",
        )
        conn.commit()
    clock = FrozenClock(datetime(2026, 4, 2, 1, 0, tzinfo=UTC))
    first = schedules.tick(_connect(url), clock=clock)
    assert [(r["status"], r["schedule"], r["params"]["since"]) for r in first] == [
        ("done", "ww-monthly", "2026-02-28T16:00:00+00:00")
    ]
    assert first[0]["files"][0]["areas"] == ["wastewater"]
    clock.advance(3600)
    assert [r for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == "ww-monthly"] == []
    with psycopg.connect(url) as conn:
        runs = conn.execute("SELECT count(*) FROM report_run WHERE schedule = 'ww-monthly'").fetchone()[0]
        late = conn.execute(
            "SELECT count(*) FROM alarm WHERE rule LIKE 'report.%%.ww-monthly' AND closed_at IS NULL"
        ).fetchone()
        audit = conn.execute("SELECT actor FROM audit_entry WHERE action = 'config.report_schedule.put'").fetchone()
    assert runs == 1 and late[0] == 0 and audit == ("user:admin",)


@pytest.mark.db
def test_a_failing_schedule_is_retried_then_raised_and_late(month_db) -> None:
    url, _ = month_db
    with psycopg.connect(url) as conn:  # an area that does not exist (any more): every run fails
        schedules.put_schedule(
            conn, spec=ScheduleSpec("broken", "device_health", SITE, "daily", ("csv",), ("gone",)), actor="user:admin"
        )
        conn.commit()
    clock = FrozenClock(datetime(2026, 3, 20, 3, 0, tzinfo=UTC))  # 11:00 in Shanghai: 3 h after midnight
    outcomes = []
    for _ in range(5):
        outcomes += [r["status"] for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == "broken"]
        clock.advance(60)
    assert outcomes == ["failed"] * schedules.MAX_ATTEMPTS
    with psycopg.connect(url) as conn:
        open_ = dict(
            conn.execute(
                "SELECT rule, title FROM alarm WHERE rule LIKE 'report.%%.broken' AND closed_at IS NULL"
            ).fetchall()
        )
        error = conn.execute("SELECT error FROM report_run WHERE schedule = 'broken' LIMIT 1").fetchone()[0]
    assert open_ == {"report.failed.broken": "报表生成失败: broken", "report.late.broken": "报表迟到: broken"}
    assert "no area gone" in error


@pytest.mark.db
def test_an_incident_schedule_reports_each_closed_incident_once(month_db) -> None:
    url, ids = month_db
    with psycopg.connect(url) as conn:
        schedules.put_schedule(
            conn, spec=ScheduleSpec("incidents", "incident", SITE, "incident", ("pdf",)), actor="user:admin"
        )
        conn.execute("UPDATE report_schedule SET created_at = '2026-03-10T00:00:00Z' WHERE name = 'incidents'")
        conn.commit()
    clock = FrozenClock(datetime(2026, 4, 2, tzinfo=UTC))
    made = [r for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == "incidents"]
    # alarm A closed after starting its response plan; A2 is still open, the flood has not ended
    assert [(r["status"], r["params"]["alarm_id"]) for r in made] == [("done", ids["a"])]
    assert [r for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == "incidents"] == []
    with psycopg.connect(url) as conn, pytest.raises(schedules.ReportError, match="incident reports are scheduled"):
        schedules.put_schedule(conn, spec=ScheduleSpec("wrong", "incident", SITE, "monthly"), actor="user:admin")


def test_a_daily_report_kind_cannot_be_scheduled_weekly() -> None:
    schedules.check_spec(ScheduleSpec("ok", "compliance_day", SITE, "daily"))
    with pytest.raises(schedules.ReportError, match="'compliance_day' reports are scheduled daily"):
        schedules.check_spec(ScheduleSpec("weekly", "compliance_day", SITE, "weekly"))
