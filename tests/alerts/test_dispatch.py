"""Interlock command records without a broker: acknowledgement states, the publish/record race, a device that
confirms another's command, retries and time-outs with their critical alarm, manual commands, bypasses, drills."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from alerts import commands as machine
from alerts import flows, service
from alerts.models import Actor, AlarmError, PermissionDenied
from core.commands import device_key, new_command, signed
from core.model import Severity
from tests.alerts.helpers import T0, apply, finding, later

pytestmark = pytest.mark.db

OP = Actor("zhang.wei", "operator")
MGR = Actor("li.na", "ehs_manager")


def _issue(conn, site: str, now) -> dict:
    """What the worker does with the pending command: sign, (publish), mark issued."""
    [command] = machine.pending(conn=conn)
    payload = signed(
        new_command(
            action=command["action"],
            params=command["params"],
            issued_at=now,
            ttl=timedelta(seconds=60),
            command_id=str(command["id"]),
        ),
        device_key("secret", site, command["device"]),
    )
    machine.mark_issued(conn=conn, command=command, payload=payload, now=now)
    return machine.get_command(conn=conn, command_id=command["id"])


def _raise_h2(conn, site: str, config) -> None:
    service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH)], now=T0, config=config)


def _failed_alarm(conn, site: str) -> tuple | None:
    return conn.execute(
        "SELECT state, priority, condition_active FROM alarm WHERE rule = 'interlock.failed' AND "
        "source = %s AND closed_at IS NULL",
        (f"{site}/formation/fan-01",),
    ).fetchone()


def test_issued_accepted_done(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    _raise_h2(conn, site, config)
    command = _issue(conn, site, T0)
    assert command["status"] == "issued" and command["attempts"] == 1
    ack = {"id": str(command["id"]), "status": "accepted", "detail": "", "state": {}}
    assert flows.apply_ack(conn=conn, site=site, device="fan-01", ack=ack, now=later(0.2))["status"] == "accepted"
    done = flows.apply_ack(
        conn=conn,
        site=site,
        device="fan-01",
        now=later(2),
        ack={**ack, "status": "done", "state": {"fan_running": True}},
    )
    assert done["status"] == "done" and done["device_state"] == {"fan_running": True}
    # a repeated or out-of-order acknowledgement does not move it back
    assert flows.apply_ack(conn=conn, site=site, device="fan-01", ack=ack, now=later(3)) is None
    assert [e["status"] for e in machine.get_command(conn=conn, command_id=command["id"])["events"]] == [
        "pending",
        "issued",
        "accepted",
        "done",
        "accepted",
    ]


def test_rejection_raises_a_critical_alarm_and_the_next_success_clears_it(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    _raise_h2(conn, site, config)
    command = _issue(conn, site, T0)
    flows.apply_ack(
        conn=conn,
        site=site,
        device="fan-01",
        now=later(1),
        ack={"id": str(command["id"]), "status": "rejected", "detail": "bad signature"},
    )
    assert _failed_alarm(conn, site) == ("active_unacked", 4, True)
    # an operator commands the fan by hand; this time it confirms: the failure alarm returns to normal
    manual = flows.request_command(
        conn=conn,
        site=site,
        device="fan-01",
        action="exhaust_fan.on",
        actor=OP,
        reason="interlock refused, starting by hand",
        now=later(10),
        config=config,
    )
    assert manual["status"] == "pending" and manual["origin"] == "manual"
    issued = _issue(conn, site, later(11))
    flows.apply_ack(
        conn=conn, site=site, device="fan-01", now=later(12), ack={"id": str(issued["id"]), "status": "done"}
    )
    assert _failed_alarm(conn, site) == ("cleared_unacked", 4, False)


def test_an_ack_from_another_device_is_refused(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    _raise_h2(conn, site, config)
    command = _issue(conn, site, T0)
    assert (
        flows.apply_ack(
            conn=conn, site=site, device="spr-01", now=later(1), ack={"id": str(command["id"]), "status": "done"}
        )
        is None
    )
    got = machine.get_command(conn=conn, command_id=command["id"])
    assert got["status"] == "issued" and got["events"][-1]["status"] == "foreign_ack"
    with pytest.raises(ValueError, match="status"):
        flows.apply_ack(conn=conn, site=site, device="fan-01", now=later(1), ack={"id": "x", "status": "ok"})


def test_an_ack_that_arrives_before_its_command_is_recorded(conn: psycopg.Connection, site: str) -> None:
    """Ingest publishes first and records after; the device may answer in between."""
    config = apply(conn, site)
    command_id = str(uuid.uuid4())
    assert (
        flows.apply_ack(
            conn=conn,
            site=site,
            device="fan-01",
            now=T0,
            ack={"id": command_id, "status": "done", "state": {"fan_running": True}},
        )
        is None
    )
    issued = {
        "id": command_id,
        "site": site,
        "area": "formation",
        "device": "fan-01",
        "action": "exhaust_fan.on",
        "params": {},
        "status": "issued",
        "issued_at": T0.isoformat(),
        "accept_within_s": 5,
        "done_within_s": 30,
        "payload": {"id": command_id, "expires_at": int(later(60).timestamp() * 1000)},
    }
    machine.record_commands(
        conn=conn, commands=[issued], alarm=None, event_id=None, finding_id="f1", batch_id="b1", now=later(0.05)
    )
    assert machine.get_command(conn=conn, command_id=command_id)["status"] == "done"
    assert config is not None


def test_unconfirmed_commands_are_retried_then_time_out_with_a_critical_alarm(
    conn: psycopg.Connection, site: str
) -> None:
    config = apply(conn, site)
    _raise_h2(conn, site, config)
    command = _issue(conn, site, T0)
    assert machine.retries_due(conn=conn, now=later(4)) == []
    for attempt, at in ((2, 5), (3, 10)):  # accepted within 5 s, else sent again (same id)
        [due] = machine.retries_due(conn=conn, now=later(at))
        machine.mark_issued(conn=conn, command=due, payload=due["payload"], now=later(at))
        assert machine.get_command(conn=conn, command_id=command["id"])["attempts"] == attempt
    assert flows.time_out(conn=conn, now=later(14)) == []
    assert machine.retries_due(conn=conn, now=later(15)) == []  # the bounded retries are spent
    [timed_out] = flows.time_out(conn=conn, now=later(15))
    assert timed_out["status"] == "timed_out" and "3 attempt" in timed_out["detail"]
    assert _failed_alarm(conn, site) == ("active_unacked", 4, True)
    # the device confirms late: recorded, and the failure alarm returns to normal (still to be acknowledged)
    flows.apply_ack(
        conn=conn, site=site, device="fan-01", now=later(20), ack={"id": str(command["id"]), "status": "done"}
    )
    assert machine.get_command(conn=conn, command_id=command["id"])["detail"].startswith("confirmed late")
    assert _failed_alarm(conn, site)[0] == "cleared_unacked"


def test_accepted_but_never_done_times_out(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    _raise_h2(conn, site, config)
    command = _issue(conn, site, T0)
    flows.apply_ack(
        conn=conn, site=site, device="fan-01", now=later(1), ack={"id": str(command["id"]), "status": "accepted"}
    )
    assert flows.time_out(conn=conn, now=later(29)) == []
    [row] = flows.time_out(conn=conn, now=later(30))
    assert row["detail"] == "accepted but not done in time"


def test_manual_commands_need_a_role_a_reason_and_a_declared_actuator(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    with pytest.raises(PermissionDenied):
        flows.request_command(
            conn=conn,
            site=site,
            device="fan-01",
            action="exhaust_fan.on",
            actor=Actor("guest", "viewer"),
            reason="x",
            now=T0,
            config=config,
        )
    with pytest.raises(AlarmError, match="reason"):
        flows.request_command(
            conn=conn, site=site, device="fan-01", action="exhaust_fan.on", actor=OP, reason="", now=T0, config=config
        )
    with pytest.raises(AlarmError, match="cannot valve.close"):
        flows.request_command(
            conn=conn, site=site, device="fan-01", action="valve.close", actor=OP, reason="x", now=T0, config=config
        )
    with pytest.raises(AlarmError, match="not a declared actuator"):
        flows.request_command(
            conn=conn, site=site, device="gas-01", action="exhaust_fan.on", actor=OP, reason="x", now=T0, config=config
        )
    command = flows.request_command(
        conn=conn,
        site=site,
        device="fan-01",
        action="exhaust_fan.on",
        actor=OP,
        reason="ventilate before maintenance",
        now=T0,
        config=config,
    )
    assert conn.execute(
        "SELECT actor, action, detail->>'reason' FROM audit_entry WHERE target = %s", (f"command:{command['id']}",)
    ).fetchone() == ("zhang.wei", "command.issue", "ventilate before maintenance")


def test_a_bypass_needs_two_people_and_expires(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    bypass = flows.request_bypass(
        conn=conn,
        site=site,
        device="fan-01",
        actor=OP,
        reason="fan motor replaced",
        duration=timedelta(hours=2),
        now=T0,
        config=config,
    )
    assert machine.active_bypasses(conn=conn, now=T0) == []  # not before a second person approves
    with pytest.raises(PermissionDenied, match="two different people"):
        flows.approve_bypass(conn=conn, bypass_id=bypass["id"], actor=Actor("zhang.wei", "ehs_manager"), now=T0)
    with pytest.raises(PermissionDenied):
        flows.approve_bypass(conn=conn, bypass_id=bypass["id"], actor=Actor("wang.fang", "operator"), now=T0)
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():  # the database refuses it as well
        conn.execute(
            "UPDATE interlock_bypass SET approved_by = requested_by, expires_at = now() WHERE id = %s", (bypass["id"],)
        )
    flows.approve_bypass(conn=conn, bypass_id=bypass["id"], actor=MGR, now=later(60))
    [active] = machine.active_bypasses(conn=conn, now=later(61))
    assert active.expires_at == later(60) + timedelta(hours=2)
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=later(62))], now=later(62), config=config
    )
    [command] = machine.list_commands(conn=conn, site=site)
    assert command["status"] == "skipped" and "bypassed" in command["detail"]
    assert machine.active_bypasses(conn=conn, now=later(60) + timedelta(hours=2, seconds=1)) == []
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_entry ORDER BY seq")]
    assert actions[-2:] == ["bypass.request", "bypass.approve"]


def test_a_drill_never_commands_a_real_device_and_marks_every_record(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    alarm = flows.start_drill(
        conn=conn,
        site=site,
        area="formation",
        level=1,
        actor=MGR,
        reason="quarterly thermal-runaway drill",
        now=T0,
        config=config,
    )
    assert alarm["drill"] and alarm["state"] == "active_unacked"
    commands = {c["device"]: c for c in alarm["commands"]}
    assert commands["spr-sim"]["status"] == "pending" and commands["spr-sim"]["drill"]
    assert commands["spr-01"]["status"] == "skipped" and "real device" in commands["spr-01"]["detail"]
    assert all(n["drill"] for n in alarm["notifications"]) and alarm["notifications"][0]["evacuation"]["zh"]
    assert all(e["drill"] for e in alarm["events"])
    # the worker's second line of defence: even a drill command queued for a real device is never sent
    [pending] = machine.pending(conn=conn)
    assert pending["device"] == "spr-sim"
    ended = flows.end_drill(conn=conn, alarm_id=alarm["id"], actor=MGR, now=later(600))
    assert ended["state"] == "normal"
    assert conn.execute("SELECT count(*) FROM alarm WHERE drill AND rule <> 'drill'").fetchone()[0] == 0
