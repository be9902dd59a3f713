"""Delivery of scheduled reports through the notification outbox and the provider stand-ins: e-mail over a local
SMTP server with the files attached (byte for byte the archived ones), a DingTalk group bot (the local stand-in,
which checks the signature) with a signed download link that works without signing in and is audited. Both
channels fail at first (the mail server is down, the bot's token unknown) and are retried by the outbox until they
succeed; a target naming no channel raises an alarm at once."""

from __future__ import annotations

import email
import hashlib
import re
from datetime import UTC, datetime

import psycopg
import pytest
from aiosmtpd.controller import Controller

from alerts.notifications import notify_config
from alerts.notifications.notifier import Notifier
from alerts.settings import AlertSettings
from core.clock import FrozenClock
from reports import schedules
from reports.delivery import Delivery
from reports.schedules import ScheduleSpec
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, free_port, stand_ins
from tests.alerts.providers import text_of
from tests.api.conftest import SECRET, SITE, World

pytestmark = [pytest.mark.db]
PUBLIC = "https://ehs.example"


def test_scheduled_reports_are_mailed_and_linked(world: World) -> None:
    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    try:
        # the bot's token is not known to the stand-in yet: its first attempts are refused
        with stand_ins() as providers, psycopg.connect(world.url) as conn:
            known = dict(providers.dingtalk)
            providers.dingtalk.clear()
            for name, kind, url in (
                ("smtp", "email", f"mailto://127.0.0.1:{port}?from=ehs@plant.example&mode=insecure"),
                ("ding", "dingtalk", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/"),
            ):
                notify_config.put_channel(
                    conn=conn, secret=SECRET, spec=notify_config.ChannelSpec(name=name, kind=kind, url=url)
                )
            schedules.put_schedule(
                conn,
                actor="user:admin",
                spec=ScheduleSpec(
                    "epb-monthly",
                    "alarm_month",
                    SITE,
                    "monthly",
                    ("pdf", "csv"),
                    ("wastewater",),
                    deliver_to=("smtp:inspector@epb.example", "ding", "nowhere"),
                ),
            )
            conn.commit()
            # now: the links it sends are valid for 7 days from now (the API checks them on its own clock)
            clock = FrozenClock(datetime.now(UTC))
            made = schedules.tick(lambda: psycopg.connect(world.url), delivery=Delivery(SECRET, PUBLIC), clock=clock)
            sender = Notifier(  # the outbox's sender, with the API's secret (it sealed the channels)
                database_url=world.url,
                secret=SECRET,
                clock=clock,
                settings=AlertSettings(notify_endpoints={"dingtalk": providers.base}, public_url=PUBLIC),
            )
            with psycopg.connect(world.url, autocommit=True) as nconn:
                assert sender.run_once(nconn) == 2  # both refused: the mail server is down, the token unknown
                assert received == [] and providers.messages("dingtalk") == []
                smtp.start()
                providers.dingtalk.update(known)
                clock.advance(3600)  # past every backoff
                assert sender.run_once(nconn) == 2
            ding = [text_of(m) for m in providers.messages("dingtalk")]
            attempts = conn.execute(
                "SELECT d.kind, d.status, d.attempts, d.address, d.last_error FROM notification_delivery d "
                "JOIN notification_outbox o ON o.id = d.outbox_id WHERE o.kind = 'report' ORDER BY d.kind"
            ).fetchall()
    finally:
        if smtp._thread is not None:  # started (aiosmtpd refuses to stop a server that never ran)
            smtp.stop()
    assert attempts == [("dingtalk", "sent", 2, None, None), ("email", "sent", 2, "inspector@epb.example", None)]
    files = {f["filename"]: f for f in made[0]["files"]}
    # e-mail: both files attached, byte for byte
    assert [e.rcpt_tos for e in received] == [["inspector@epb.example"]]
    mail = email.message_from_bytes(received[0].content)
    attached = {part.get_filename(): part.get_payload(decode=True) for part in mail.walk() if part.get_filename()}
    assert set(attached) == set(files)
    assert all(hashlib.sha256(body).hexdigest() == files[name]["sha256"] for name, body in attached.items())
    # DingTalk: one message with a signed link per file; a link downloads the archived file without signing in
    assert len(ding) == 1 and "报警管理月报" in ding[0]
    urls = re.findall(re.escape(PUBLIC) + r"(/api/v1/reports/links/[\w.-]+)", ding[0])
    assert len(urls) == 2
    got = world.client.get(urls[0])
    assert got.status_code == 200 and got.headers["x-content-sha256"] in {f["sha256"] for f in files.values()}
    assert hashlib.sha256(got.content).hexdigest() == got.headers["x-content-sha256"]
    assert world.client.get(urls[0][:-3] + "abc").status_code == 404  # a forged token
    with psycopg.connect(world.url) as conn:
        deliveries = conn.execute("SELECT target, status, error FROM report_delivery ORDER BY id").fetchall()
        link_download = conn.execute(
            "SELECT actor FROM audit_entry WHERE action = 'export.report.download' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        alarm = conn.execute(
            "SELECT message FROM alarm WHERE rule = 'report.delivery.epb-monthly' AND closed_at IS NULL"
        ).fetchone()
    assert deliveries == [
        ("smtp:inspector@epb.example", "queued", None),
        ("ding", "queued", None),
        ("nowhere", "failed", "no enabled channel 'nowhere'"),
    ]
    assert link_download == ("link:ding",)
    assert alarm == ("nowhere: no enabled channel 'nowhere'",)
