"""Escalation until acknowledged over a controllable clock, duty rosters, and Web Push to a receiver that
decrypts the payload like a browser (P-256 key pair and auth secret, aes128gcm)."""

from __future__ import annotations

import base64
import copy
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from alerts import service
from alerts.models import Actor
from alerts.notifications import notify_config, outbox
from core.model import Severity
from tests.alerts.helpers import SAFETY, apply, finding
from tests.alerts.notify_support import add_channel, add_user, clock, notifier, stand_ins

pytestmark = pytest.mark.db


def safety() -> dict:
    s = copy.deepcopy(SAFETY)
    s["response_plans"] = []
    s["alarms"]["defaults"] = {
        "notify": {
            lv: {"roles": ["operator"], "channels": ["sms", "webpush"]} for lv in ("low", "medium", "high", "critical")
        }
    }
    return s


def test_tiers_reminders_and_stop_on_acknowledge(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety())
    add_user(conn, "owner", "operator", phone="1001")
    add_user(conn, "mgr", "ehs_manager", phone="1002")
    add_user(conn, "boss", "admin", phone="1003")
    add_user(conn, "boss.deputy", "admin", phone="1004")
    notify_config.put_roster(
        conn=conn,
        spec=notify_config.RosterSpec(
            name="plant managers",
            role="plant_manager",
            site=site,
            shifts=[{"name": "all day", "start": "00:00", "end": "23:59:59", "users": ["boss"]}],
        ),
    )
    notify_config.put_policy(
        conn=conn,
        spec=notify_config.PolicySpec(
            name="formation",
            site=site,
            min_priority=3,
            reminder_s=300,
            max_reminders=2,
            tiers=[
                {"after_s": 300, "roles": ["ehs_manager"], "channels": ["sms"]},
                {"after_s": 900, "roles": ["plant_manager"], "channels": ["sms"]},
            ],
        ),
    )
    c = clock()
    with stand_ins() as p:
        add_channel(conn, "sms", "sms", f"json://127.0.0.1:{p.server.server_address[1]}/sms")
        n = notifier(p, c)

        def phones() -> list[str]:
            n.run_once(conn)
            got = [m["body"]["to"] for m in p.received]
            p.received.clear()
            return sorted(got)

        service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=c.now())], now=c.now())
        alarm_id = conn.execute("SELECT id FROM alarm WHERE rule = 'gas.h2'").fetchone()[0]
        assert phones() == ["1001"]  # tier 0: the area's operators at once
        c.advance(timedelta(seconds=299))
        assert phones() == []
        c.advance(timedelta(seconds=1))
        assert phones() == ["1002"]  # 5 min unacknowledged: the EHS manager
        c.advance(timedelta(seconds=300))
        assert phones() == ["1001", "1002"]  # a reminder to everyone told so far
        c.advance(timedelta(seconds=300))
        assert phones() == ["1003"]  # 15 min: the plant manager on duty (roster), not the deputy
        events = [
            r[0]
            for r in conn.execute(
                "SELECT kind FROM alarm_event WHERE alarm_id = %s ORDER BY id", (alarm_id,)
            ).fetchall()
        ]
        assert events.count("escalate") == 2
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=Actor("owner", "operator"), now=c.now())
        for _ in range(4):
            c.advance(timedelta(seconds=300))
            assert phones() == []  # acknowledged: no reminder, no further tier


def test_a_reminder_queued_before_the_acknowledgement_is_not_sent(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety())
    add_user(conn, "owner", "operator", phone="1001")
    notify_config.put_policy(conn=conn, spec=notify_config.PolicySpec(name="p", reminder_s=60, tiers=[]))
    c = clock()
    with stand_ins() as p:
        add_channel(conn, "sms", "sms", f"json://127.0.0.1:{p.server.server_address[1]}/sms")
        n = notifier(p, c)
        service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=c.now())], now=c.now())
        n.run_once(conn)
        c.advance(timedelta(seconds=60))
        n.plan(conn)  # the reminder is queued ...
        alarm_id = conn.execute("SELECT id FROM alarm WHERE rule = 'gas.h2'").fetchone()[0]
        service.acknowledge(conn=conn, alarm_id=alarm_id, actor=Actor("owner", "operator"), now=c.now())
        n.run_once(conn)  # ... and dropped at send time
        assert len(p.received) == 1
    assert conn.execute(
        "SELECT d.status, d.last_error FROM notification_delivery d JOIN notification_outbox o ON "
        "o.id = d.outbox_id WHERE o.kind = 'reminder'"
    ).fetchall() == [("skipped", "acknowledged")]


def test_rosters_follow_shifts_across_midnight() -> None:
    roster = {
        "tz": "Asia/Shanghai",
        "shifts": [
            {"name": "day", "start": "08:00", "end": "20:00", "users": ["day.lead"], "days": [1, 2, 3, 4, 5]},
            {
                "name": "night",
                "start": "20:00",
                "end": "08:00",
                "users": ["night.lead"],
                "on_call": ["doc"],
                "days": [1, 2, 3, 4, 5],
            },
        ],
    }
    friday_noon = datetime(2026, 3, 6, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, a Friday
    assert outbox.on_duty(roster, friday_noon) == {"day.lead"}
    saturday_3am = datetime(2026, 3, 6, 19, 0, tzinfo=UTC)  # 03:00 Saturday: Friday's night shift
    assert outbox.on_duty(roster, saturday_3am) == {"night.lead", "doc"}
    saturday_noon = datetime(2026, 3, 7, 4, 0, tzinfo=UTC)
    assert outbox.on_duty(roster, saturday_noon) == set()


# --- Web Push ------------------------------------------------------------------------------------------------


class Browser:
    """A browser's push subscription and a push service that decrypts what arrives for it."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.received: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/gone"):
                    self.send_response(410)
                    self.end_headers()
                    return
                plain = http_ece.decrypt(body, private_key=outer.key, auth_secret=outer.auth, version="aes128gcm")
                outer.received.append(json.loads(plain))
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(201)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscription(self, path: str = "/push/1") -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
        return {
            "endpoint": f"http://127.0.0.1:{self.server.server_address[1]}{path}",
            "keys": {"p256dh": b64(public), "auth": b64(self.auth)},
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_web_push_payload_decrypts_with_an_acknowledge_link(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety())
    user = add_user(conn, "owner", "operator")
    browser = Browser()
    try:
        good, gone = browser.subscription(), browser.subscription("/push/gone")
        for sub in (good, gone):
            notify_config.add_subscription(conn=conn, user_id=user, endpoint=sub["endpoint"], lang="en", **sub["keys"])
        c = clock()
        service.apply_findings(
            conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=450.0, at=c.now())], now=c.now()
        )
        notifier(None, c).run_once(conn)
    finally:
        browser.close()
    [msg] = browser.received
    alarm_id = conn.execute("SELECT id FROM alarm WHERE rule = 'gas.h2'").fetchone()[0]
    assert msg["kind"] == "alarm" and msg["alarm_id"] == alarm_id and msg["priority"] == 3 and not msg["drill"]
    assert msg["url"] == f"/app/#/alarms/{alarm_id}?t={msg['link_token']}" and "Priority: High" in msg["body"]
    assert set(msg) >= {"event_id", "title", "body", "at"}
    assert browser.headers[0]["authorization"].startswith("vapid t=")
    assert browser.headers[0]["topic"] and browser.headers[0]["urgency"] == "high"
    assert conn.execute("SELECT count(*) FROM push_subscription WHERE gone_at IS NOT NULL").fetchone()[0] == 1
