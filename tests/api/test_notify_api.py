"""The notification routes: signed alarm links (open, acknowledge as the recipient, expiry, forgery), own
settings and push subscriptions, and channels whose secret URLs never come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts import service
from alerts.notifications import links
from core.model import Severity, SubjectRef
from tests.api.conftest import SECRET, SITE, World

pytestmark = pytest.mark.db


def _alarm(world: World) -> int:
    with world.db() as conn, conn.transaction():
        service.raise_system_alarm(
            conn=conn,
            rule=world.unique("api.link."),
            subject=SubjectRef(SITE, "formation"),
            severity=Severity.HIGH,
            message="h2 high",
            caused_by="test",
            at=datetime.now(UTC),
            title="氢气高",
            title_en="H2 high",
        )
        return conn.execute("SELECT max(id) FROM alarm").fetchone()[0]


def _token(world: World, alarm_id: int, who: str | None, *, age: timedelta = timedelta(0)) -> str:
    return links.make(
        SECRET,
        alarm_id=alarm_id,
        user_id=world.ids[f"user:{who}"] if who else None,
        now=datetime.now(UTC) - age,
        ttl=timedelta(minutes=30),
    )


def test_a_link_opens_the_alarm_and_acknowledges_it_as_its_recipient(world: World) -> None:
    alarm_id = _alarm(world)
    token = _token(world, alarm_id, "operator")
    opened = world.client.get(f"/api/v1/links/{token}")
    assert opened.status_code == 200
    body = opened.json()
    assert body["alarm_id"] == alarm_id and body["can_ack"] and body["alarm"]["title"] == "氢气高"
    acked = world.client.post(f"/api/v1/links/{token}/ack", json={"comment": "on my way"})
    assert acked.status_code == 200 and acked.json()["state"] == "active_acked"
    assert world.client.post(f"/api/v1/links/{token}/ack", json={}).status_code == 409
    assert world.client.get(f"/api/v1/links/{token}").json()["can_ack"] is False
    with psycopg.connect(world.url) as conn:
        acked_by, audit_actor = conn.execute(
            "SELECT a.acked_by, (SELECT actor FROM audit_entry WHERE action = 'alarm.ack' AND target = %s) "
            "FROM alarm a "
            "WHERE a.id = %s",
            (f"alarm:{alarm_id}", alarm_id),
        ).fetchone()
    assert acked_by == "user:operator" and audit_actor == "user:operator"


def test_expired_forged_and_view_only_links(world: World) -> None:
    alarm_id = _alarm(world)
    expired = _token(world, alarm_id, "operator", age=timedelta(minutes=31))
    assert world.client.get(f"/api/v1/links/{expired}").status_code == 410
    assert world.client.post(f"/api/v1/links/{expired}/ack", json={}).status_code == 410
    forged = _token(world, alarm_id, "operator")[:-4] + "AAAA"
    assert world.client.get(f"/api/v1/links/{forged}").status_code == 404
    assert world.client.get("/api/v1/links/not-a-token").status_code == 404
    for who in ("viewer", None):  # a viewer may not acknowledge; a group chat names nobody
        token = _token(world, alarm_id, who)
        assert world.client.get(f"/api/v1/links/{token}").json()["can_ack"] is False
        assert world.client.post(f"/api/v1/links/{token}/ack", json={}).status_code == 403


def test_own_settings_and_push_subscriptions(world: World) -> None:
    me = world.headers("operator")
    assert world.client.get("/api/v1/me/notification-settings", headers=me).json()["lang"] == "zh-CN"
    wanted = {
        "lang": "en",
        "channels": {"webpush": True, "email": False, "wecom": True, "dingtalk": True, "feishu": True, "sms": False},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "min_priority": 2,
        "email": "op@plant.example",
        "phone": "13800000000",
        "wecom_user": "op.wecom",
    }
    assert world.client.put("/api/v1/me/notification-settings", headers=me, json=wanted).json() == wanted
    unchanged = {k: v for k, v in wanted.items() if k not in ("email", "phone", "wecom_user")}  # addresses kept
    assert world.client.put("/api/v1/me/notification-settings", headers=me, json=unchanged).json() == wanted
    assert world.client.get("/api/v1/me/notification-settings", headers=me).json() == wanted
    key = world.client.get("/api/v1/push/vapid-public-key", headers=me).json()["public_key"]
    assert len(key) == 87  # 65-byte uncompressed point, URL-safe base64 unpadded
    assert world.client.get("/api/v1/push/vapid-public-key", headers=me).json()["public_key"] == key  # kept
    sub = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
        "expirationTime": None,
        "lang": "en",
        "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u", "auth": "tBHItJI5svbpez7K"},
    }
    created = world.client.post("/api/v1/push/subscriptions", headers=me, json=sub)
    assert created.status_code == 201 and set(created.json()) >= {"id", "endpoint", "created_at"}
    sub_id = created.json()["id"]
    assert [s["id"] for s in world.client.get("/api/v1/push/subscriptions", headers=me).json()] == [sub_id]
    other = world.headers("ehs_manager")
    assert world.client.get("/api/v1/push/subscriptions", headers=other).json() == []
    assert world.client.delete(f"/api/v1/push/subscriptions/{sub_id}", headers=other).status_code == 404
    assert world.client.delete(f"/api/v1/push/subscriptions/{sub_id}", headers=me).status_code == 204
    assert world.client.get("/api/v1/push/subscriptions", headers=me).json() == []


def test_channel_urls_are_never_returned(world: World) -> None:
    admin = world.headers("admin")
    url = "dingtalk://SECtopsecret0123@robottoken4567/"
    created = world.client.post(
        "/api/v1/notification-channels",
        headers=admin,
        json={"name": "ding", "kind": "dingtalk", "url": url, "site": SITE},
    )
    assert created.status_code == 201
    listed = world.client.get("/api/v1/notification-channels", headers=admin).text
    audit = world.client.get("/api/v1/audit", headers=admin).text
    for text in (created.text, listed, audit):
        assert "topsecret" not in text and "robottoken" not in text
    assert created.json()["url"] == "dingtalk://***@***/***" or created.json()["url"].startswith("dingtalk://***")
    wrong = world.client.post(
        "/api/v1/notification-channels",
        headers=admin,
        json={"name": "x", "kind": "wecom", "url": "json://example.com/", "site": SITE},
    )
    assert wrong.status_code == 400
