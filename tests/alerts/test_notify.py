"""Notifications through apprise to local stand-ins of DingTalk, WeCom, Feishu, an SMS gateway and SMTP:
message content, signatures, bad tokens, rate limits, retries, the failing-channel alarm, drills, floods."""

from __future__ import annotations

import copy
import re
from datetime import time, timedelta

import psycopg
import pytest
from aiosmtpd.controller import Controller

from alerts import flows, service
from alerts.models import Actor
from alerts.notifications import links, notify_config
from core.model import Severity
from tests.alerts.helpers import SAFETY, apply, finding
from tests.alerts.notify_support import SECRET, add_channel, add_user, bots, clock, free_port, notifier, stand_ins
from tests.alerts.providers import text_of

pytestmark = pytest.mark.db

ALL = ["wecom", "dingtalk", "feishu", "sms", "email", "webpush"]


def safety(**defaults) -> dict:
    """The test plant without response plans: alarms notify by priority (``alarms.defaults.notify``)."""
    s = copy.deepcopy(SAFETY)
    s["response_plans"] = []
    s["alarms"]["defaults"] = {
        "notify": {level: {"roles": ["operator"], "channels": ALL} for level in ("low", "medium", "high", "critical")},
        **defaults,
    }
    return s


def rows(conn: psycopg.Connection, sql: str, *params) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def test_an_alarm_reaches_every_group_bot_and_person_with_a_signed_link(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety())
    zhang = add_user(conn, "zhang.wei", "operator", phone="13800000001")
    add_user(conn, "tom", "operator", lang="en", phone="13800000002")
    add_user(conn, "viewer1", "viewer", phone="13800000003")  # not an operator: not notified
    c = clock()
    with stand_ins() as p:
        bots(conn, p)
        service.apply_findings(
            conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=450.0, at=c.now())], now=c.now()
        )
        sent = notifier(p, c).run_once(conn)
        assert sent == 5  # 3 group bots + 2 SMS
        assert not p.refused  # signature, token, shape all accepted
        ding, wecom, feishu = (text_of(m) for prov in ("dingtalk", "wecom", "feishu") for m in p.messages(prov))
        for text in (ding, wecom, feishu):
            assert "测试厂" in text and "化成" in text and "氢气" in text and "450 ppm" in text
            assert "gas.h2" in text and "优先级: 高" in text
            assert "https://ehs.example/app/#/alarms/" in text
        sms = {m["body"]["to"]: m for m in p.messages("webhook")}
        assert set(sms) == {"13800000001", "13800000002"}
        assert "Priority: High" in sms["13800000002"]["body"]["message"]  # English for tom
        assert "优先级: 高" in sms["13800000001"]["body"]["message"]
        assert sms["13800000001"]["headers"]["X-EHS-Delivery"].startswith("ehs-")
    token = re.search(r"\?t=([\w.\-]+)", sms["13800000001"]["body"]["message"]).group(1)
    link = links.read(SECRET, token, now=c.now())
    assert link.user_id == zhang  # the link acknowledges as the person it was sent to
    group_token = re.search(r"\?t=([\w.\-]+)", ding).group(1)
    assert links.read(SECRET, group_token, now=c.now()).user_id is None
    attempts = rows(conn, "SELECT channel, result, target FROM notification_attempt ORDER BY id")
    assert len(attempts) == 5 and {a[1] for a in attempts} == {"ok"}
    assert not any(DING_SECRET_OR_TOKEN in a[2] for a in attempts for DING_SECRET_OR_TOKEN in ("SEC0123", "d1ngt0"))
    assert rows(conn, "SELECT status FROM notification_outbox") == [("sent",)]


def test_bad_tokens_and_signatures_are_retried_with_backoff_then_raise_a_channel_alarm(
    conn: psycopg.Connection, site: str
) -> None:
    apply(conn, site, safety())
    add_user(conn, "zhang.wei", "operator")
    c = clock()
    with stand_ins() as p:
        add_channel(conn, "ding-bad-secret", "dingtalk", "dingtalk://SECwrongsecret00@d1ngt0ken/")
        add_channel(conn, "wecom-bad-key", "wecom", "wecombot://notakey")
        n = notifier(p, c, notify_fail_alarm_after=2, notify_max_attempts=3)
        service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=c.now())], now=c.now())
        n.run_once(conn)
        codes = sorted(m["answer"]["errcode"] for m in p.refused)
        assert codes == [93000, 310000]
        pending = rows(conn, "SELECT status, attempts, next_attempt_at > %s FROM notification_delivery", c.now())
        assert pending == [("pending", 1, True)] * 2  # retried later, not at once
        assert n.run_once(conn) == 0  # backoff: nothing due yet
        c.advance(timedelta(seconds=6))
        n.run_once(conn)
        alarms = rows(conn, "SELECT title FROM alarm WHERE rule = 'notify.channel_failing' AND closed_at IS NULL")
        assert sorted(a[0] for a in alarms) == ["通知通道故障: ding-bad-secret", "通知通道故障: wecom-bad-key"]
        c.advance(timedelta(seconds=60))
        n.run_once(conn)
    # (the channel alarm has notifications of its own: look at the first alarm's deliveries)
    assert rows(
        conn,
        "SELECT DISTINCT status, attempts FROM notification_delivery WHERE outbox_id = (SELECT min(id) "
        "FROM notification_outbox)",
    ) == [("failed", 3)]
    errors = rows(conn, "SELECT DISTINCT error FROM notification_attempt")
    assert {e[0] for e in errors} == {"dingtalk 310000 sign not match", "wecom 93000 invalid webhook url"}


def test_rate_limits_queue_the_rest_and_provider_limits_are_retried(conn: psycopg.Connection, site: str) -> None:
    """25 alarms to a DingTalk robot (20 messages a minute): its bucket lets 10 go at once and 10 more a minute
    later, never more than 20 in a minute, and queues the rest. A robot that still answers 130101 "send too
    fast" gets the message again later: rate-limited messages are kept, never dropped."""
    apply(conn, site, safety(flood_start=1000))
    c = clock()
    with stand_ins() as p:
        add_channel(conn, "ding", "dingtalk", "dingtalk://SEC0123456789abcdef@d1ngt0ken/")
        n = notifier(p, c)
        for i in range(25):
            service.apply_findings(
                conn=conn,
                findings=[finding(site, f"r{i}", Severity.HIGH, device=None, point=None, at=c.now())],
                now=c.now(),
            )
        assert n.run_once(conn) == 10
        queued = rows(
            conn,
            "SELECT count(*), min(next_attempt_at) > %s FROM notification_delivery WHERE status = 'pending'",
            c.now(),
        )
        assert queued == [(15, True)]
        c.advance(timedelta(seconds=60))
        n.run_once(conn)
        assert len(p.messages("dingtalk")) == 20 and not p.refused  # 20 within the robot's minute
        c.advance(timedelta(seconds=30))  # our bucket has 5 tokens; the robot's real minute is not over
        n.run_once(conn)
        limited = rows(conn, "SELECT count(*) FROM notification_attempt WHERE result = 'rate_limited'")[0][0]
        assert limited == 5 and [m["answer"]["errcode"] for m in p.refused] == [130101] * 5
        assert rows(conn, "SELECT count(*) FROM notification_delivery WHERE status = 'pending'")[0][0] == 5
        p.enforce_limits = False  # the robot's minute is over
        c.advance(timedelta(seconds=61))
        n.run_once(conn)
    assert rows(conn, "SELECT status, count(*) FROM notification_delivery GROUP BY status") == [("sent", 25)]


def test_email_over_smtp_in_the_recipients_language(conn: psycopg.Connection, site: str) -> None:
    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        apply(conn, site, safety())
        add_user(conn, "li.na", "operator", email="li.na@plant.example")
        add_user(conn, "tom", "operator", lang="en", email="tom@plant.example")
        add_channel(conn, "smtp", "email", f"mailto://127.0.0.1:{port}?from=ehs@plant.example&mode=insecure")
        c = clock()
        service.apply_findings(
            conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=450.0, at=c.now())], now=c.now()
        )
        assert notifier(None, c).run_once(conn) == 2
    finally:
        smtp.stop()
    by_to = {e.rcpt_tos[0]: e.content.decode() for e in received}
    assert set(by_to) == {"li.na@plant.example", "tom@plant.example"}
    assert "Priority: High" in by_to["tom@plant.example"]


def test_quiet_hours_delay_but_never_hold_priority_4(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety())
    c = clock()
    all_day = (time(0, 0), time(23, 59))
    add_user(conn, "night", "operator", phone="13800000009", quiet_hours=all_day)
    with stand_ins() as p:
        add_channel(conn, "sms", "sms", f"json://127.0.0.1:{p.server.server_address[1]}/sms")
        n = notifier(p, c)
        service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, at=c.now())], now=c.now())
        n.run_once(conn)
        assert p.messages("webhook") == []  # high: held until the quiet hours end
        service.apply_findings(
            conn=conn,
            findings=[finding(site, "cell.hot", Severity.CRITICAL, device="cab-01", point="cell_temp_c", at=c.now())],
            now=c.now(),
        )
        n.run_once(conn)
        assert len(p.messages("webhook")) == 1  # critical: at once
    assert (
        rows(
            conn,
            "SELECT count(*) FROM notification_delivery WHERE status = 'pending' AND next_attempt_at > %s",
            c.now(),
        )[0][0]
        == 1
    )


def test_drills_are_marked_and_reach_only_the_named_recipients(conn: psycopg.Connection, site: str) -> None:
    s = copy.deepcopy(SAFETY)
    s["response_plans"][0]["levels"][0]["notify"] = {"users": ["drill.lead"], "channels": ["wecom", "sms"]}
    apply(conn, site, s)
    add_user(conn, "drill.lead", "ehs_manager", phone="13800000010")
    add_user(conn, "bystander", "operator", phone="13800000011")
    c = clock()
    with stand_ins() as p:
        bots(conn, p)
        add_channel(conn, "wecom-real-only", "wecom", "wecombot://otherkey", drills=False)
        flows.start_drill(
            conn=conn,
            site=site,
            area="formation",
            level=2,
            actor=Actor("li.na", "ehs_manager"),
            reason="季度演练",
            now=c.now(),
        )
        notifier(p, c).run_once(conn)
        wecom = [text_of(m) for m in p.messages("wecom")]
        sms = p.messages("webhook")
    assert len(wecom) == 1 and wecom[0].startswith("【演练】")
    assert [m["body"]["to"] for m in sms] == ["13800000010"]
    assert not [m for m in p.refused if m["token"] == "otherkey"]  # the real-only bot was not used


def test_a_flood_sends_one_summary_per_interval(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site, safety(flood_start=3, flood_end=1))
    c = clock()
    with stand_ins(enforce_limits=False) as p:
        add_channel(conn, "feishu", "feishu", "feishu://fe1shutoken", rate_per_s=100, burst=100)
        n = notifier(p, c, notify_group_interval_s=60)
        for i in range(12):
            service.apply_findings(
                conn=conn,
                findings=[finding(site, f"flood.r{i}", Severity.HIGH, device=None, point=None, at=c.now())],
                now=c.now(),
            )
            if i < 3:
                n.run_once(conn)  # the first alarms go out one by one, before there is a flood
        n.run_once(conn)
        texts = [text_of(m) for m in p.messages("feishu")]
        # 3 alarms before the flood (more than 3 in the window), the flood message, one summary of the other 9
        assert len(texts) == 5
        assert sum("报警泛滥" in t for t in texts) == 2 and "本期 9 条报警" in texts[-1]
        for i in range(12, 15):
            service.apply_findings(
                conn=conn,
                findings=[finding(site, f"flood.r{i}", Severity.HIGH, device=None, point=None, at=c.now())],
                now=c.now(),
            )
        n.run_once(conn)
        assert len(p.messages("feishu")) == 5  # within the interval: held for the next summary
        c.advance(timedelta(seconds=61))
        n.run_once(conn)
        texts = [text_of(m) for m in p.messages("feishu")]
    assert len(texts) == 6 and "本期 3 条报警" in texts[-1]
    assert rows(conn, "SELECT count(*) FROM notification_outbox WHERE status = 'grouped' AND group_id IS NULL") == [
        (0,)
    ]


def test_channel_urls_are_sealed_and_only_shown_redacted(conn: psycopg.Connection) -> None:
    out = notify_config.put_channel(
        conn=conn,
        secret=SECRET,
        spec=notify_config.ChannelSpec(
            name="ding", kind="dingtalk", url="dingtalk://SEC0123456789abcdef@d1ngt0ken0123456789/"
        ),
    )
    stored = rows(conn, "SELECT url_sealed, url_redacted FROM notification_channel")[0]
    assert b"d1ngt0ken" not in bytes(stored[0]) and "d1ngt0ken" not in stored[1] and "SEC01" not in stored[1]
    assert out["url"] == stored[1] and out["url"].startswith("dingtalk://")
    with pytest.raises(service.AlarmError):
        notify_config.put_channel(
            conn=conn,
            secret=SECRET,
            spec=notify_config.ChannelSpec(name="x", kind="dingtalk", url="json://example.com/"),
        )


def test_wecom_application_messages_reach_named_people(conn: psycopg.Connection, site: str) -> None:
    """WeCom application messages (no apprise plugin: ours, in apprise's shape): an access token once, then one
    message per person to their WeCom userid; a wrong secret is the channel's fault (40001)."""
    apply(conn, site, safety())
    add_user(conn, "zhang.wei", "operator", wecom_user="ZhangWei")
    add_user(conn, "tom", "operator", lang="en", wecom_user="Tom")
    c = clock()
    with stand_ins(wecom_app={"ww0corp": "appsecret"}) as p:
        add_channel(conn, "wecom-app", "wecom_app", "wecomapp://ww0corp:appsecret@1000002/")
        n = notifier(p, c)
        n.apprise.endpoints["wecom_app"] = p.base
        for rule in ("gas.h2", "gas.co"):
            service.apply_findings(conn=conn, findings=[finding(site, rule, Severity.HIGH, at=c.now())], now=c.now())
        assert n.run_once(conn) == 4
        sent = [m for m in p.messages("wecom_app") if m["body"]]
        assert sorted(m["body"]["touser"] for m in sent) == ["Tom", "Tom", "ZhangWei", "ZhangWei"]
        assert all(m["body"]["agentid"] == 1000002 for m in sent)
        assert any("Priority: High" in text_of(m) for m in sent if m["body"]["touser"] == "Tom")
        assert p.token_requests == 1  # the access token is kept until it expires
        add_channel(conn, "wecom-app", "wecom_app", "wecomapp://ww0corp:wrongsecret@1000002/")
        service.apply_findings(conn=conn, findings=[finding(site, "gas.h2", Severity.NORMAL, at=c.now())], now=c.now())
        service.apply_findings(
            conn=conn,
            findings=[finding(site, "cell.hot", Severity.HIGH, device="cab-01", point="cell_temp_c", at=c.now())],
            now=c.now(),
        )
        n.run_once(conn)
    errors = {r[0] for r in rows(conn, "SELECT error FROM notification_attempt WHERE result = 'error'")}
    assert errors == {"wecom_app 40001 invalid credential"}
