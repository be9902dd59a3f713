"""The worker killed mid-send (SIGKILL of a real ``python -m alerts`` while the DingTalk stand-in holds the
request open) and started again: nothing is lost, nothing answered is sent again, and only the one message in
flight is sent a second time (the at-least-once window documented in ``alerts.notifications.outbox``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from alerts import service
from core.model import Severity
from tests.alerts.helpers import apply, finding
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, SECRET, add_channel, clock, stand_ins
from tests.alerts.providers import text_of
from tests.alerts.test_notify import safety
from tests.support import spawn, stop_process, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]


def _worker(database_url: str, broker_url: str, base: str, log: Path):
    return spawn(
        "alerts",
        {
            "EHS_DATABASE_URL": database_url,
            "EHS_MQTT_URL": broker_url,
            "EHS_SECRET_KEY": SECRET,
            "EHS_ALERTS_CLIENT_ID": f"notify-crash-{uuid.uuid4().hex[:8]}",
            "EHS_ALERTS_NOTIFY_ENDPOINTS": json.dumps({"dingtalk": base}),
            "EHS_ALERTS_NOTIFY_SENDERS": "1",
            "EHS_ALERTS_NOTIFY_LEASE_S": "3",
            "EHS_ALERTS_PUBLISH_ALARMS": "false",
        },
        log,
    )


def _statuses(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.id, d.status, o.alarm_id FROM notification_delivery d JOIN notification_outbox "
            "o ON o.id = d.outbox_id ORDER BY d.id"
        ).fetchall()


def test_killed_mid_send_and_restarted(database_url: str, broker_url: str, site: str, tmp_path: Path) -> None:
    c = clock()
    with stand_ins(enforce_limits=False) as p:
        with psycopg.connect(database_url) as conn:
            apply(conn, site, safety())
            add_channel(conn, "ding", "dingtalk", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/")
            for i in range(5):
                service.apply_findings(
                    conn=conn,
                    findings=[finding(site, f"crash.r{i}", Severity.HIGH, device=None, point=None, at=c.now())],
                    now=c.now(),
                )
        p.hold_on = 3  # the provider gets the 3rd message and never answers
        proc = _worker(database_url, broker_url, p.base, tmp_path / "worker1.log")
        try:
            wait_for(p.holding.is_set, message="the third message to be held open")
            in_flight = wait_for(
                lambda: [r for r in _statuses(database_url) if r[1] == "sending"],
                message="the held delivery to be in flight",
            )
            proc.kill()  # SIGKILL: no cleanup of any kind
            proc.wait(10)
        finally:
            stop_process(proc)
        p.release.set()
        before = _statuses(database_url)
        assert [r[1] for r in before].count("sent") == 2 and len(in_flight) == 1
        proc = _worker(database_url, broker_url, p.base, tmp_path / "worker2.log")
        try:
            wait_for(lambda: all(r[1] == "sent" for r in _statuses(database_url)), message="every delivery sent")
        finally:
            stop_process(proc)
        texts = [text_of(m) for m in p.messages("dingtalk")]
    with psycopg.connect(database_url) as conn:
        rules = dict(conn.execute("SELECT id, rule FROM alarm").fetchall())
        lost = conn.execute("SELECT delivery_id, result FROM notification_attempt WHERE result = 'lost'").fetchall()
    copies = {rule: sum(f"规则: {rule}\n" in t for t in texts) for rule in rules.values()}
    held_rule = rules[in_flight[0][2]]
    assert copies.pop(held_rule) == 2  # in flight at the kill: received, sent again
    assert set(copies.values()) == {1}  # answered ones and unsent ones: exactly once
    assert lost == [(in_flight[0][0], "lost")]  # and the record says so
