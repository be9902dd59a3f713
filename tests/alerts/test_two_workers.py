"""Several alerts workers at once (issue 11, item 6): two real ``python -m alerts`` processes on one database
and one broker share the work (claimed with ``FOR UPDATE SKIP LOCKED`` and leases) without doing any of it
twice: every notification delivered once, every command published once per attempt, every time-out handled
once, every alarm event published once on ``ehs/v1/{site}/alarms``."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from pathlib import Path

import orjson
import psycopg
import pytest

from alerts import flows, service
from alerts.models import Actor
from core import mqtt as mq
from core import topics
from core.model import Severity
from tests.alerts.helpers import apply, finding
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, SECRET, add_channel, clock, stand_ins
from tests.alerts.test_notify import safety
from tests.support import spawn, stop_process, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

ALARMS, DONE, IGNORED = 12, 10, 6  # alarms raised; commands the fan confirms; commands the sprinkler ignores
OP = Actor("zhang.wei", "operator")


class Device:
    """Every device of the site in one MQTT client: counts command messages by id; the fan confirms its own."""

    def __init__(self, broker_url: str, site: str) -> None:
        self.site = site
        self.address = mq.BrokerAddress.parse(broker_url)
        self.client = mq.new_client(
            self.address, f"dev-{uuid.uuid4().hex[:8]}", protocol=mq.detect_protocol(self.address)
        )
        self.commands: Counter[str] = Counter()
        self.events: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"ehs/v1/{site}/+/cmd", 1), (topics.alarms_topic(site), 1)]
        )
        mq.connect_blocking(self.client, self.address)

    def _on_message(self, client, _userdata, msg) -> None:
        body = orjson.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/alarms"):
                self.events[body["event_id"]] += 1
                return
            self.commands[body["id"]] += 1
        parsed = topics.parse(msg.topic)
        if parsed.device == "fan-01":
            client.publish(
                topics.device_topic(self.site, parsed.device, topics.CMD_ACK),
                orjson.dumps({"id": body["id"], "status": "done"}),
                qos=1,
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _worker(database_url: str, broker_url: str, base: str, log: Path):
    return spawn(
        "alerts",
        {
            "EHS_DATABASE_URL": database_url,
            "EHS_MQTT_URL": broker_url,
            "EHS_SECRET_KEY": SECRET,
            "EHS_ALERTS_CLIENT_ID": f"two-{uuid.uuid4().hex[:8]}",
            "EHS_ALERTS_HEARTBEAT_S": "0.5",
            "EHS_ALERTS_NOTIFY_ENDPOINTS": json.dumps({"dingtalk": base}),
            "EHS_ALERTS_NOTIFY_SENDERS": "2",
        },
        log,
    )


def _rows(db: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_two_workers_share_the_work_and_do_nothing_twice(
    database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    c = clock()
    with psycopg.connect(database_url) as conn:
        apply(conn, site, safety(accept_within_s=1, done_within_s=2, command_retries=1, flood_start=100))
        add_channel(conn, "ding", "dingtalk", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/")
    device = Device(broker_url, site)
    with stand_ins(enforce_limits=False) as p:
        workers = [_worker(database_url, broker_url, p.base, tmp_path / f"worker{i}.log") for i in (1, 2)]
        try:
            wait_for(
                lambda: len(_rows(database_url, "SELECT 1 FROM service_heartbeat WHERE service = 'alerts'")) == 2,
                message="both workers running",
            )
            with psycopg.connect(database_url) as conn:  # one commit: both workers see all of it at once
                for i in range(ALARMS):
                    service.apply_findings(
                        conn=conn,
                        findings=[finding(site, f"two.r{i}", Severity.HIGH, device=None, point=None, at=c.now())],
                        now=c.now(),
                    )
                for device_code, action, n in (("fan-01", "exhaust_fan.on", DONE), ("spr-01", "sprinkler.on", IGNORED)):
                    for _ in range(n):
                        flows.request_command(
                            conn=conn,
                            site=site,
                            device=device_code,
                            action=action,
                            actor=OP,
                            reason="two workers",
                            now=c.now(),
                        )
            wait_for(
                lambda: (
                    _rows(
                        database_url,
                        "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER "
                        "(WHERE status = 'timed_out') FROM interlock_command",
                    )[0]
                    == (DONE, IGNORED)
                ),
                timeout=60,
                message="every command confirmed or timed out",
            )
            wait_for(
                lambda: (
                    _rows(
                        database_url,
                        "SELECT count(*) FROM notification_delivery WHERE status IN ('pending', 'sending')",
                    )
                    == [(0,)]
                    and len(p.messages("dingtalk")) >= ALARMS
                ),
                timeout=60,
                message="every notification delivered",
            )
            events = _rows(
                database_url, "SELECT e.id FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id WHERE a.site = %s", site
            )
            wait_for(lambda: set(device.events) >= {e for (e,) in events}, message="every alarm event published")
            assert all(w.poll() is None for w in workers)
        finally:
            for w in workers:
                stop_process(w)
            device.close()
        messages = p.messages("dingtalk")
    commands = dict(_rows(database_url, "SELECT id::text, attempts FROM interlock_command"))
    # each command published exactly once per attempt: once for a confirmed one, 1 + retries for an ignored one
    assert device.commands == Counter(commands)
    assert sorted(Counter(commands.values()).items()) == [(1, DONE), (2, IGNORED)]
    timed_out = _rows(
        database_url,
        "SELECT command_id, count(*) FROM interlock_command_event WHERE status = 'timed_out' GROUP BY command_id",
    )
    assert len(timed_out) == IGNORED and {n for _, n in timed_out} == {1}  # each time-out handled once
    failed = _rows(database_url, "SELECT device, activations FROM alarm WHERE rule = 'interlock.failed'")
    assert failed == [("spr-01", 1)]  # one alarm, raised once
    # every delivery sent once: one attempt each, one message at the provider each
    deliveries = _rows(
        database_url,
        "SELECT d.id, count(a.*) FROM notification_delivery d JOIN notification_attempt "
        "a ON a.delivery_id = d.id GROUP BY d.id",
    )
    assert len(deliveries) >= ALARMS and {n for _, n in deliveries} == {1}
    assert len(messages) == len(deliveries)
    assert set(device.events.values()) == {1}  # every alarm event once
