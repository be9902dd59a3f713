"""The alarm record in PostgreSQL: findings become ISA-18.2 transitions; one open alarm per (rule, source);
latching and reset; shelving with expiry; out of service; people's actions audited; restart without duplicates."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from alerts import service
from alerts.models import Actor, AlarmError, IllegalTransition, PermissionDenied
from core.model import Severity
from detectors.engine import Engine
from detectors.service import load_rules
from tests.alerts.helpers import T0, apply, finding, later

pytestmark = pytest.mark.db

OP = Actor("zhang.wei", "operator")
MGR = Actor("li.na", "ehs_manager")


def _one(conn, sql: str, *params):
    return conn.execute(sql, params).fetchone()


def _state(conn, alarm_id: int) -> str:
    return _one(conn, "SELECT state FROM alarm WHERE id = %s", alarm_id)[0]


def _open(conn, rule: str) -> int:
    return _one(conn, "SELECT id FROM alarm WHERE rule = %s AND closed_at IS NULL", rule)[0]


def test_raise_ack_clear_with_events_notifications_and_plan(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=450)], now=T0, config=config, batch_id="b1"
    )
    alarm_id = _open(conn, "gas.h2")
    alarm = service.get_alarm(conn=conn, alarm_id=alarm_id)
    assert alarm["state"] == "active_unacked" and alarm["priority"] == 3 and alarm["plan_level"] == 2
    assert [e["kind"] for e in alarm["events"]] == ["raise", "command"]
    raise_event = alarm["events"][0]
    assert raise_event["actor"] == "system:engine" and raise_event["batch_id"] == "b1" and raise_event["annunciated"]
    assert raise_event["caused_by"].startswith("f-gas.h2")
    # the plan level started: its notification (not the default one) and its command, waiting for the worker
    assert [(n["kind"], n["plan_level"], n["recipients"]["roles"]) for n in alarm["notifications"]] == [
        ("plan", 2, ["shift_leader"])
    ]
    assert [(c["device"], c["action"], c["status"], c["alarm_event_id"]) for c in alarm["commands"]] == [
        ("fan-01", "exhaust_fan.on", "pending", raise_event["id"])
    ]

    service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(5), comment="seen, fan running")
    assert _state(conn, alarm_id) == "active_acked"
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.NORMAL, at=later(9))], now=later(9), config=config
    )
    assert _state(conn, alarm_id) == "normal"
    assert _one(conn, "SELECT closed_at FROM alarm WHERE id = %s", alarm_id)[0] is not None
    audit = _one(conn, "SELECT actor, action, target, detail->>'cause' FROM audit_entry ORDER BY seq DESC LIMIT 1")
    assert audit == ("zhang.wei", "alarm.ack", f"alarm:{alarm_id}", "seen, fan running")


def test_returned_to_normal_before_ack_then_reoccurs(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)

    def apply_f(sev: Severity, t: float) -> None:
        service.apply_findings(
            conn=conn,
            findings=[finding(site, "gas.co", sev, point="co_ppm", at=later(t))],
            now=later(t),
            config=config,
        )

    apply_f(Severity.MEDIUM, 0)
    alarm_id = _open(conn, "gas.co")
    apply_f(Severity.NORMAL, 5)
    assert _state(conn, alarm_id) == "cleared_unacked"  # D: still needs an acknowledgement
    apply_f(Severity.MEDIUM, 20)
    assert _state(conn, alarm_id) == "active_unacked"  # D -> B: the same alarm, not a new one
    apply_f(Severity.NORMAL, 30)
    service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(31))
    assert _state(conn, alarm_id) == "normal"
    apply_f(Severity.MEDIUM, 100)
    assert _open(conn, "gas.co") != alarm_id  # a new episode is a new alarm row
    assert _one(conn, "SELECT activations FROM alarm WHERE id = %s", alarm_id)[0] == 2


def test_severity_up_re_alarms_an_acknowledged_alarm(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(
        conn=conn,
        findings=[finding(site, "cell.hot", Severity.HIGH, device="cab-01", point="cell_temp_c")],
        now=T0,
        config=config,
    )
    alarm_id = _open(conn, "cell.hot")
    service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(1))
    service.apply_findings(
        conn=conn,
        findings=[
            finding(
                site,
                "cell.hot",
                Severity.CRITICAL,
                device="cab-01",
                point="cell_temp_c",
                at=later(2),
                previous=Severity.HIGH,
            )
        ],
        now=later(2),
        config=config,
    )
    alarm = service.get_alarm(conn=conn, alarm_id=alarm_id)
    assert alarm["state"] == "active_unacked" and alarm["priority"] == 4
    # the critical level started plan level 1: charge stop of the source cabinet, both sprinklers, evacuation
    assert sorted((c["device"], c["action"]) for c in alarm["commands"]) == [
        ("cab-01", "charge.stop"),
        ("fan-01", "exhaust_fan.on"),
        ("spr-01", "sprinkler.on"),
        ("spr-sim", "sprinkler.on"),
    ]
    level1 = [n for n in alarm["notifications"] if n["plan_level"] == 1]
    assert level1[0]["evacuation"]["route_en"] == "East door"


def test_latching_alarm_needs_ack_and_reset(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    fire = lambda sev, t: finding(site, "fire.confirmed", sev, device=None, point=None, at=later(t))  # noqa: E731
    service.apply_findings(conn=conn, findings=[fire(Severity.CRITICAL, 0)], now=T0, config=config)
    alarm_id = _open(conn, "fire.confirmed")
    service.apply_findings(conn=conn, findings=[fire(Severity.NORMAL, 10)], now=later(10), config=config)
    assert _state(conn, alarm_id) == "latched_unacked"
    with pytest.raises(IllegalTransition, match="acknowledge it first"):
        service.reset(conn=conn, alarm_id=alarm_id, actor=OP, now=later(11))
    service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(12))
    assert _state(conn, alarm_id) == "latched_acked"
    service.reset(conn=conn, alarm_id=alarm_id, actor=OP, now=later(13), comment="area inspected")
    assert _state(conn, alarm_id) == "normal"


def test_illegal_and_unauthorised_requests_are_refused(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(
        conn=conn,
        findings=[finding(site, "cell.hot", Severity.CRITICAL, device="cab-01", point="cell_temp_c")],
        now=T0,
        config=config,
    )
    alarm_id = _open(conn, "cell.hot")
    with pytest.raises(PermissionDenied):
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=Actor("screen", "viewer"), now=later(1))
    service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(1))
    with pytest.raises(IllegalTransition, match="nothing to acknowledge") as info:
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(2))
    assert info.value.status == 409
    with pytest.raises(AlarmError, match="reason"):
        service.shelve(conn=conn, alarm_id=alarm_id, actor=MGR, reason=" ", now=later(3), duration=timedelta(hours=1))
    with pytest.raises(AlarmError, match="at most 8 h"):
        service.shelve(conn=conn, alarm_id=alarm_id, actor=MGR, reason="x", now=later(3), duration=timedelta(hours=9))
    with pytest.raises(PermissionDenied, match="critical alarm needs an EHS manager"):
        service.shelve(
            conn=conn, alarm_id=alarm_id, actor=OP, reason="nuisance", now=later(3), duration=timedelta(hours=1)
        )
    with pytest.raises(AlarmError, match="permit"):
        service.remove_from_service(
            conn=conn, alarm_id=alarm_id, actor=MGR, reason="calibration", permit="", now=later(4)
        )


def test_shelved_alarm_is_evaluated_but_hidden_and_comes_back_when_shelving_expires(
    conn: psycopg.Connection, site: str
) -> None:
    config = apply(conn, site)
    h2 = lambda sev, t: finding(site, "gas.h2", sev, at=later(t))  # noqa: E731
    service.apply_findings(conn=conn, findings=[h2(Severity.HIGH, 0)], now=T0, config=config)
    alarm_id = _open(conn, "gas.h2")
    service.shelve(
        conn=conn,
        alarm_id=alarm_id,
        actor=OP,
        reason="sensor being recalibrated",
        now=later(1),
        duration=timedelta(minutes=30),
    )
    service.apply_findings(conn=conn, findings=[h2(Severity.NORMAL, 60)], now=later(60), config=config)
    service.apply_findings(conn=conn, findings=[h2(Severity.HIGH, 120)], now=later(120), config=config)
    assert _state(conn, alarm_id) == "shelved"
    events = service.get_alarm(conn=conn, alarm_id=alarm_id)["events"]
    # recorded while shelved, not annunciated; the interlock of the plan still went out: shelving hides an alarm
    # from operators, it does not switch off a protective function (that is a bypass, with two people)
    assert [(e["kind"], e["annunciated"]) for e in events[-3:]] == [
        ("clear", False),
        ("raise", False),
        ("command", False),
    ]
    assert service.expire_shelving(conn=conn, now=later(29 * 60)) == []
    assert service.expire_shelving(conn=conn, now=later(31 * 60)) == [alarm_id]
    alarm = service.get_alarm(conn=conn, alarm_id=alarm_id)
    assert alarm["state"] == "active_unacked" and alarm["events"][-1]["cause"] == "shelving expired"
    assert alarm["notifications"][-1]["kind"] == "alarm"  # back in view: announced again


def test_out_of_service_with_permit_and_return(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH)], now=T0, config=config)
    alarm_id = _open(conn, "gas.h2")
    service.remove_from_service(
        conn=conn, alarm_id=alarm_id, actor=MGR, reason="detector replaced", permit="PTW-2026-0311", now=later(1)
    )
    with pytest.raises(IllegalTransition, match="out of service cannot be shelved"):
        service.shelve(conn=conn, alarm_id=alarm_id, actor=MGR, reason="x", now=later(2), duration=timedelta(hours=1))
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.NORMAL, at=later(5))], now=later(5), config=config
    )
    service.return_to_service(conn=conn, alarm_id=alarm_id, actor=MGR, now=later(6))
    assert _state(conn, alarm_id) == "normal"  # back, with the condition normal: closed


def test_one_open_alarm_per_rule_and_source_is_enforced_by_the_database(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH)], now=T0, config=config)
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=later(1))], now=later(1), config=config
    )  # a repeat of the same state (a restart) adds nothing
    assert _one(conn, "SELECT count(*) FROM alarm WHERE rule = 'gas.h2'")[0] == 1
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        conn.execute(
            "INSERT INTO alarm (rule, source, site, title, state) SELECT rule, source, site, title, "
            "'active_unacked' FROM alarm WHERE rule = 'gas.h2'"
        )
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"), conn.transaction():
        conn.execute("UPDATE alarm_event SET actor = 'someone else'")


def test_restart_with_active_alarms_takes_them_up_without_duplicates(conn: psycopg.Connection, site: str) -> None:
    """The engine restarts knowing nothing; the open alarms in the database give it back its state."""
    from core.clock import FrozenClock
    from core.registry import load_index

    config = apply(conn, site)
    index = load_index(conn)
    revision, rules = load_rules(conn=conn)
    cell = index.devices[(site, "cab-01")].points["cell_temp_c"].id
    before = Engine(rules, index, clock=FrozenClock(T0), revision=revision)
    found = before.evaluate([(T0, cell, 58.0, 0)], batch_id="b1")
    service.apply_findings(conn=conn, findings=found, now=T0, config=config)
    # the process restarts: a new engine, restored from the database
    after = Engine(rules, index, clock=FrozenClock(T0), revision=revision)
    assert after.restore(service.open_alarm_conditions(conn=conn)) == 1
    assert after.evaluate([(later(1), cell, 58.5, 0)]) == []  # still high: nothing new, no duplicate
    back = after.evaluate([(later(2), cell, 40.0, 0)])
    service.apply_findings(conn=conn, findings=back, now=later(2), config=config)
    assert _one(conn, "SELECT count(*), min(state) FROM alarm WHERE rule = 'cell.hot'") == (1, "cleared_unacked")
