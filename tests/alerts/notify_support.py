"""Shared pieces of the notification tests: users, channels pointing at the local stand-ins, a notifier."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import psycopg

from alerts.notifications import notify_config
from alerts.notifications.notifier import Notifier
from alerts.settings import AlertSettings
from core.clock import FrozenClock
from tests.alerts.providers import Providers

SECRET = "test-secret-key-for-notifications"
DING_TOKEN, DING_SECRET = "d1ngt0ken", "SEC0123456789abcdef"
WECOM_KEY, FEISHU_TOKEN = "wec0mkey", "fe1shutoken"


def add_user(conn: psycopg.Connection, username: str, role: str, **settings) -> int:
    user_id = conn.execute(
        "INSERT INTO app_user (username, role, all_sites, password_hash) VALUES (%s, %s, true, 'x') RETURNING id",
        (username, role),
    ).fetchone()[0]
    if settings:
        notify_config.put_settings(conn=conn, user_id=user_id, **settings)
    return user_id


def add_channel(conn: psycopg.Connection, name: str, kind: str, url: str, **extra) -> int:
    spec = notify_config.ChannelSpec(name=name, kind=kind, url=url, **extra)
    return notify_config.put_channel(conn=conn, secret=SECRET, spec=spec)["id"]


def bots(conn: psycopg.Connection, providers: Providers, **extra) -> dict[str, int]:
    """DingTalk (signed), WeCom and Feishu group bots and an SMS gateway webhook, all on the stand-ins."""
    port = providers.server.server_address[1]
    return {
        "dingtalk": add_channel(conn, "ding", "dingtalk", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/", **extra),
        "wecom": add_channel(conn, "wecom", "wecom", f"wecombot://{WECOM_KEY}", **extra),
        "feishu": add_channel(conn, "feishu", "feishu", f"feishu://{FEISHU_TOKEN}", **extra),
        "sms": add_channel(conn, "sms", "sms", f"json://127.0.0.1:{port}/sms", **extra),
    }


def stand_ins(**kwargs) -> Providers:
    return Providers(dingtalk={DING_TOKEN: DING_SECRET}, wecom={WECOM_KEY}, feishu={FEISHU_TOKEN}, **kwargs)


def notifier(providers: Providers | None, clock: FrozenClock, **settings) -> Notifier:
    endpoints = {k: providers.base for k in ("dingtalk", "wecom", "feishu")} if providers else {}
    return Notifier(
        database_url="",
        secret=SECRET,
        clock=clock,
        settings=AlertSettings(notify_endpoints=endpoints, public_url="https://ehs.example", **settings),
    )


def clock() -> FrozenClock:
    """A controllable clock starting now (outbox rows are due from the database's now())."""
    return FrozenClock(datetime.now(UTC))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
