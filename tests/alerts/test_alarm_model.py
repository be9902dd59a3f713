"""``alerts.alarm.Alarm`` (issue 18, item 1): the typed alarm read model gives back exactly the dict the alarm
engine answered with before it existed (keys in order, plain values, same JSON), from a real alarm row."""

from __future__ import annotations

import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from alerts import service
from alerts.alarm import COLUMNS, Alarm
from alerts.models import Actor, AlarmState, Priority
from core.model import Severity
from tests.alerts.helpers import T0, apply, finding, later

pytestmark = pytest.mark.db

OP = Actor("zhang.wei", "operator")


def _rows(conn: psycopg.Connection, sql: str, *params) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def _as_before(row: dict) -> dict:
    """The read model as alerts.service built it before ``Alarm`` (``_present``), written out again here."""
    state = AlarmState(row["state"])
    return {
        **row,
        "state_label": state.label,
        "state_label_en": state.label_en,
        "state_code": state.code,
        "needs_ack": state.needs_ack,
        "annunciated": state.annunciated,
        "priority_label": Priority(row["priority"]).label,
    }


def test_from_row_to_dict_round_trips_a_real_alarm(conn: psycopg.Connection, site: str) -> None:
    config = apply(conn, site)
    service.apply_findings(
        conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=450)], now=T0, config=config, batch_id="b1"
    )
    alarm_id = _rows(conn, "SELECT id FROM alarm WHERE rule = 'gas.h2' AND closed_at IS NULL")[0]["id"]
    acked = service.acknowledge(conn=conn, alarm_id=alarm_id, actor=OP, now=later(5), comment="seen")
    assert isinstance(acked, Alarm) and acked.state is AlarmState.ACTIVE_ACKED and acked.acked_by == "zhang.wei"

    row = _rows(conn, "SELECT * FROM alarm WHERE id = %s", alarm_id)[0]
    assert tuple(row) == COLUMNS  # the class names every column, in table order

    alarm = service.get_alarm(conn=conn, alarm_id=alarm_id)
    assert alarm.state is AlarmState.ACTIVE_ACKED and alarm.priority is Priority.HIGH
    assert alarm.severity is Severity.HIGH and alarm.needs_ack is False
    expected = {
        **_as_before(row),
        "events": _rows(conn, "SELECT * FROM alarm_event WHERE alarm_id = %s ORDER BY id", alarm_id),
        "commands": _rows(conn, "SELECT * FROM interlock_command WHERE alarm_id = %s ORDER BY created_at", alarm_id),
        "notifications": _rows(conn, "SELECT * FROM notification_outbox WHERE alarm_id = %s ORDER BY id", alarm_id),
    }
    out = alarm.to_dict()
    assert list(out) == list(expected) and out == expected
    assert [type(out[k]) for k in ("state", "severity", "priority")] == [str, int, int]  # plain, as before
    assert orjson.dumps(out) == orjson.dumps(expected)
    assert Alarm.from_row(out).to_dict() == out
    assert Alarm.from_row(row).to_dict() == _as_before(row)  # no timeline loaded: no timeline keys
    # read as the mapping it was (code that only reads keys)
    assert dict(alarm) == out and alarm["state"] == "active_acked" and alarm["priority"] == 3

    listed = service.list_alarms(conn=conn, site=site)
    assert [a.to_dict() for a in listed if a.id == alarm_id] == [_as_before(row)]
