"""Alarm management beyond one alarm: suppression by design with first-out, chattering, floods, and the KPIs."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from alerts import kpi, management, service
from core.model import Severity
from tests.alerts.helpers import T0, apply, finding, later

pytestmark = pytest.mark.db


def _alarm(conn, rule: str, source_like: str = "%") -> dict:
    return (
        service.list_alarms(conn=conn, rule=rule, open_only=True)[0]
        if source_like == "%"
        else [a for a in service.list_alarms(conn=conn, rule=rule) if source_like in a["source"]][0]
    )


def test_a_consequence_is_suppressed_while_its_cause_is_active(conn: psycopg.Connection, site: str) -> None:
    """An offline device is also silent: its stale alarm is suppressed by design, and comes back on its own."""
    config = apply(conn, site)
    offline = lambda sev, t: finding(site, "dev.offline", sev, point=None, at=later(t))  # noqa: E731
    stale = lambda sev, t: finding(site, "dev.stale", sev, point=None, at=later(t))  # noqa: E731
    service.apply_findings(conn=conn, findings=[offline(Severity.MEDIUM, 0)], now=T0, config=config)
    service.apply_findings(conn=conn, findings=[stale(Severity.MEDIUM, 5)], now=later(5), config=config)
    cause, consequence = _alarm(conn, "dev.offline"), _alarm(conn, "dev.stale")
    assert consequence["state"] == "suppressed" and consequence["suppressed_by"] == cause["id"]
    assert not service.get_alarm(conn=conn, alarm_id=consequence["id"])["notifications"]  # nobody paged twice
    # the other device's stale alarm is not in the scope (device) of this cause
    service.apply_findings(
        conn=conn,
        findings=[finding(site, "dev.stale", Severity.MEDIUM, device="gas-02", point=None, at=later(6))],
        now=later(6),
        config=config,
    )
    assert _alarm(conn, "dev.stale", "gas-02")["state"] == "active_unacked"
    # the device comes back online but is still silent: the stale alarm is shown now
    service.apply_findings(conn=conn, findings=[offline(Severity.NORMAL, 30)], now=later(30), config=config)
    shown = service.get_alarm(conn=conn, alarm_id=consequence["id"])
    assert shown["state"] == "active_unacked" and shown["suppressed_by"] is None
    assert shown["events"][-1]["kind"] == "unsuppress" and shown["notifications"]


def test_first_out_is_recorded_when_the_cause_comes_second(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    co = finding(site, "gas.co", Severity.MEDIUM, point="co_ppm")
    fire = finding(site, "fire.confirmed", Severity.CRITICAL, device=None, point=None, at=later(2))
    service.apply_findings(conn=conn, findings=[co], now=T0, config=config)
    service.apply_findings(conn=conn, findings=[fire], now=later(2), config=config)
    co_alarm, fire_alarm = _alarm(conn, "gas.co"), _alarm(conn, "fire.confirmed")
    assert co_alarm["state"] == "suppressed" and co_alarm["first_out"] and not fire_alarm["first_out"]
    first = [e for e in service.get_alarm(conn=conn, alarm_id=fire_alarm["id"])["events"] if e["kind"] == "first_out"]
    assert first[0]["detail"]["first_out"] == co_alarm["id"]


def test_chattering_is_marked_after_three_activations_in_a_minute(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    for i, sev in enumerate([Severity.MEDIUM, Severity.NORMAL] * 3):
        service.apply_findings(
            conn=conn,
            findings=[finding(site, "gas.co", sev, point="co_ppm", at=later(10 * i))],
            now=later(10 * i),
            config=config,
        )
    alarm = _alarm(conn, "gas.co")
    assert alarm["chattering"] and alarm["activations"] == 3  # one row: B <-> D until acknowledged
    assert [e["kind"] for e in service.get_alarm(conn=conn, alarm_id=alarm["id"])["events"]].count("chattering") == 1


def test_a_flood_groups_an_areas_alarms_and_ends_when_the_rate_falls(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    # eleven different alarms within 10 minutes in one area (standards.md 1.3: more than 10 starts a flood)
    sources = [(d, p) for d in ("gas-01", "gas-02") for p in ("h2_ppm", "co_ppm")]
    found = []
    for i in range(11):
        device, point = sources[i % 4]
        rule = "gas.co" if point == "co_ppm" else "gas.h2"
        sev = Severity.MEDIUM if rule == "gas.co" else Severity.HIGH
        found.append(finding(site, rule, sev, device=device, point=point, at=later(30 * i)))
        found.append(finding(site, rule, Severity.NORMAL, device=device, point=point, at=later(30 * i + 10)))
    for f in found:
        service.apply_findings(conn=conn, findings=[f], now=f.ts, config=config)
    floods = conn.execute("SELECT id, alarm_count, first_alarm_id, ended_at FROM alarm_flood").fetchall()
    assert len(floods) == 1
    flood_id, count, first_alarm, ended = floods[0]
    assert count == 11 and ended is None
    assert conn.execute("SELECT min(id) FROM alarm").fetchone()[0] == first_alarm  # first out of the flood
    assert conn.execute("SELECT count(*) FROM notification_outbox WHERE kind = 'flood'").fetchone()[0] == 1
    assert management.end_floods(conn=conn, now=later(330 + 60), config=config) == []
    assert management.end_floods(conn=conn, now=later(330 + 600), config=config) == [flood_id]

    k = kpi.kpis(conn=conn, since=T0, until=T0 + timedelta(hours=1), site=site, config=config)
    assert k["annunciated"] == 11 and k["max_per_10min"] == 11 and k["pct_10min_over_10"] > 0
    assert k["floods"][0]["first_out"]["alarm_id"] == first_alarm
    assert 0 < k["pct_time_in_flood"] <= 100
    assert sum(r["alarms"] for r in k["top10"]) == 11 and k["top10_share_pct"] == 100.0
    assert set(k["priority_pct"]) == {"medium", "high"} and k["targets"]["alarms_per_10min"]["acceptable"] == 1
    assert k["chattering"] == 0  # each source came back every 2 minutes: many alarms, none chattering


def test_stale_alarms_count_in_the_kpis(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH)], now=T0, config=config)
    k = kpi.kpis(conn=conn, since=T0, until=T0 + timedelta(hours=25), site=site, config=config)
    assert k["stale_present"] == 1 and k["alarms_per_day"] == pytest.approx(24 / 25, rel=1e-3)
