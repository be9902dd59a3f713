"""Late and failed scheduled reports are alarms: a monthly report due at 06:00 in Shanghai on April 1st (still
March 31st in UTC) is late an hour later (its grace) if no run has succeeded, and both ``report.late`` and
``report.failed`` clear when a run succeeds; an incident schedule is late when an incident closed more than its
grace ago without its report."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from core.clock import FrozenClock
from reports import schedules
from reports.registry import KINDS
from reports.schedules import ScheduleSpec, due_at, last_period
from tests.api.conftest import SITE


def _connect(url: str):
    return lambda: psycopg.connect(url)


def _alarms(url: str, name: str) -> dict[str, tuple[bool, str]]:
    """rule -> (condition active, message) of the schedule's report alarms."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT rule, condition_active, message FROM alarm WHERE rule LIKE %s AND closed_at IS NULL",
            (f"report.%.{name}",),
        ).fetchall()
    return {rule: (active, message) for rule, active, message in found}


def _active(url: str, name: str) -> set[str]:
    return {rule.split(".")[1] for rule, (active, _) in _alarms(url, name).items() if active}


def test_the_due_time_moves_the_period_in_the_sites_zone() -> None:
    # 05:30 on April 1st in Shanghai (21:30 UTC on March 31st): March is not due before 06:00, February is latest
    before = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)
    since, until = last_period("monthly", before, "Asia/Shanghai", time(6))
    assert (since.month, until.month) == (2, 3)
    since, until = last_period("monthly", before + timedelta(hours=1), "Asia/Shanghai", time(6))
    assert (since.month, until.month, until.utcoffset()) == (3, 4, timedelta(hours=8))
    assert due_at(until, time(6), "Asia/Shanghai") == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)


@pytest.mark.db
def test_a_monthly_report_late_across_the_month_end_then_cleared(month_db) -> None:
    url, _ = month_db
    name = "late-monthly"
    spec = ScheduleSpec(
        name, "device_health", SITE, "monthly", ("csv",), ("wastewater",), at_local=time(6), grace=timedelta(hours=1)
    )
    with psycopg.connect(url) as conn:
        schedules.put_schedule(conn, spec=spec, actor="user:admin")
        conn.commit()
    clock = FrozenClock(datetime(2026, 3, 31, 21, 30, tzinfo=UTC))  # 05:30 on April 1st in Shanghai

    def tick() -> list[tuple[str, str]]:
        made = schedules.tick(_connect(url), clock=clock)
        return [(r["status"], r["params"]["since"]) for r in made if r["schedule"] == name]

    assert tick() == [("done", "2026-01-31T16:00:00+00:00")]  # February: March is not due yet
    assert _active(url, name) == set()
    with psycopg.connect(url) as conn:  # from now on the runs fail (an area that does not exist)
        conn.execute("UPDATE report_schedule SET areas = '{gone}' WHERE name = %s", (name,))
        conn.commit()
    clock.set(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))  # 06:30: March due, within its grace
    assert tick() == [("failed", "2026-02-28T16:00:00+00:00")]
    assert _active(url, name) == {"failed"}
    clock.set(datetime(2026, 3, 31, 23, 1, tzinfo=UTC))  # 07:01: past the grace, the retry fails as well
    assert tick() == [("failed", "2026-02-28T16:00:00+00:00")]
    assert _active(url, name) == {"failed", "late"}
    assert _alarms(url, name)[f"report.late.{name}"][1] == (
        "no report for the period from 2026-03-01 00:00 (Asia/Shanghai)"
    )
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE report_schedule SET areas = '{wastewater}' WHERE name = %s", (name,))
        conn.commit()
    clock.set(datetime(2026, 4, 1, 1, 0, tzinfo=UTC))  # the last attempt succeeds: both alarms return to normal
    assert tick() == [("done", "2026-02-28T16:00:00+00:00")]
    assert _active(url, name) == set()
    assert set(_alarms(url, name)) >= {f"report.late.{name}", f"report.failed.{name}"}  # raised, now cleared
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE report_schedule SET enabled = false WHERE name = %s", (name,))
        conn.commit()


@pytest.mark.db
def test_an_incident_without_its_report_after_the_grace_is_late(month_db, monkeypatch) -> None:
    url, ids = month_db
    name = "late-incidents"
    with psycopg.connect(url) as conn:
        schedules.put_schedule(
            conn,
            spec=ScheduleSpec(name, "incident", SITE, "after_incident", ("csv",), grace=timedelta(minutes=30)),
            actor="user:admin",
        )
        conn.execute("UPDATE report_schedule SET created_at = '2026-03-10T00:00:00Z' WHERE name = %s", (name,))
        closed = conn.execute("SELECT closed_at FROM alarm WHERE id = %s", (ids["a"],)).fetchone()[0]
        conn.commit()
    assert closed is not None

    def broken(*args, **kwargs):
        raise RuntimeError("renderer down")

    monkeypatch.setitem(KINDS, "incident", dataclasses.replace(KINDS["incident"], build=broken))
    clock = FrozenClock(closed + timedelta(minutes=10))  # within the grace: failed, not late
    made = [r["status"] for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == name]
    assert made == ["failed"]
    assert _active(url, name) == {"failed"}
    clock.set(closed + timedelta(minutes=31))
    schedules.tick(_connect(url), clock=clock)
    assert _active(url, name) == {"failed", "late"}
    assert _alarms(url, name)[f"report.late.{name}"][1] == f"no report for alarm:{ids['a']}"
    monkeypatch.undo()
    clock.advance(60)
    made = [r for r in schedules.tick(_connect(url), clock=clock) if r["schedule"] == name]
    assert [(r["status"], r["params"]["alarm_id"]) for r in made] == [("done", ids["a"])]
    assert _active(url, name) == set()
