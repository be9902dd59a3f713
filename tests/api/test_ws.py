"""WebSocket /api/v1/ws against a real uvicorn server and real NOTIFY: authentication, subscriptions and scope,
committed readings only, alarm events, reconnect, a lost database connection, and a client too slow for alarms."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.main import create_app
from core import channels
from ingest.writer import announce
from tests.api.conftest import SITE, Template, mint_token, settings_for
from tests.support import wait_for

pytestmark = pytest.mark.db


@dataclass
class Live:
    url: str
    ws_url: str
    app: Any
    ids: dict[str, int]
    keys: dict[str, str]

    def token(self, username: str, **kwargs) -> str:
        return mint_token(self.url, self.app.state.auth.jwt_key, username, **kwargs)

    def client(self, username: str = "viewer") -> ClientConnection:
        # 60 s: twice in full CI-scale runs an in-process server answered nothing for 10 s (a handshake here, a 405
        # to schemathesis at stop 10), never in a run of its own; these tests are about the protocol, not latency
        ws = connect(self.ws_url, compression=None, open_timeout=60)
        ws.send(json.dumps({"type": "auth", "token": self.token(username)}))
        assert expect(ws, "welcome")["name"] == username
        return ws

    def commit_reading(self, point_id: int, value: float, *, rollback: bool = False) -> None:
        with psycopg.connect(self.url) as conn:
            row = (datetime.now(UTC), point_id, value, 0)
            conn.execute("INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, %s)", row)
            announce(conn, "test-batch", [row])
            if rollback:
                conn.rollback()

    def alarm(self, **event: Any) -> None:
        body = {
            "alarm_id": 1,
            "event_id": 1,
            "kind": "raise",
            "state": "active_unacked",
            "at": datetime.now(UTC).isoformat(),
            **event,
        }
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (channels.ALARMS, json.dumps(body)))


def expect(ws: ClientConnection, kind: str, timeout: float = 20.0) -> dict[str, Any]:
    """The next message, which must be of ``kind`` (waits for readiness; not a timing assertion)."""
    message = json.loads(ws.recv(timeout=timeout))
    assert message["type"] == kind, message
    return message


@pytest.fixture
def start_live(world_url: str, api_template: Template, serve) -> Callable[..., Live]:
    def start(**api_overrides: Any) -> Live:
        core, api = settings_for(world_url)
        for key, value in api_overrides.items():
            setattr(api, key, value)
        app = create_app(core, api)
        address = serve(app)
        return Live(world_url, f"ws://{address}/api/v1/ws", app, dict(api_template.ids), dict(api_template.keys))

    return start


def test_committed_readings_reach_subscribers_and_rolled_back_ones_never(start_live) -> None:
    live = start_live()
    with live.client() as ws:
        pid = live.ids["point"]
        ws.send(json.dumps({"type": "subscribe", "points": [pid]}))
        subscribed = expect(ws, "subscribed")
        assert subscribed["points"] == 1 and subscribed["errors"] == []
        snapshot = expect(ws, "readings")  # the current value first
        assert [r["point_id"] for r in snapshot["items"]] == [pid]
        live.commit_reading(pid, 111.0, rollback=True)
        live.commit_reading(pid, 222.0)
        update = expect(ws, "readings")
        assert [(r["point_id"], r["value"]) for r in update["items"]] == [(pid, 222.0)]


def test_site_subscription_and_scope(start_live) -> None:
    live = start_live()
    with live.client("regulator") as ws:
        ws.send(json.dumps({"type": "subscribe", "sites": [SITE, "s2"], "points": [live.ids["point"]]}))
        subscribed = expect(ws, "subscribed")
        assert subscribed["errors"] == [
            "sites: 's2' is not in your scope",
            f"points: {live.ids['point']} is not in your scope",
        ]
        assert subscribed["points"] == 2  # the wastewater points only
        assert {r["point_id"] for r in expect(ws, "readings")["items"]} == {live.ids["ww_point"]}
        live.commit_reading(live.ids["point"], 5.0)  # formation: not for regulators
        live.commit_reading(live.ids["ww_point"], 7.2)
        assert [(r["point_id"], r["value"]) for r in expect(ws, "readings")["items"]] == [(live.ids["ww_point"], 7.2)]
        ws.send(json.dumps({"type": "what"}))
        assert "unknown message type" in expect(ws, "error")["detail"]
        ws.send("not json")
        assert expect(ws, "error")["detail"] == "not JSON"


def test_alarm_events_follow_site_and_process_scope(start_live) -> None:
    live = start_live()
    with live.client("viewer") as viewer, live.client("regulator") as regulator:
        for ws in (viewer, regulator):
            ws.send(json.dumps({"type": "subscribe", "alarms": "*"}))
            assert expect(ws, "subscribed")["alarms"] == "*"
        live.alarm(alarm_id=1, site="s2", area="formation")  # another site: nobody here
        live.alarm(alarm_id=2, site=SITE, area="formation")  # regulators: not compliance data
        live.alarm(alarm_id=3, site=SITE, area="wastewater", message="pH 11.2 above the discharge limit")
        assert [expect(viewer, "alarm")["event"]["alarm_id"] for _ in range(2)] == [2, 3]
        event = expect(regulator, "alarm")["event"]
        assert event["alarm_id"] == 3 and event["message"].startswith("pH 11.2")


def test_authentication_is_required_and_checked(start_live) -> None:
    live = start_live()
    cases = [
        ({"type": "subscribe", "sites": [SITE]}, 4401),
        ({"type": "auth", "token": "nonsense"}, 4401),
        ({"type": "auth", "token": live.token("viewer", expired=True)}, 4401),
    ]
    for first, code in cases:
        with connect(live.ws_url, compression=None) as ws:
            ws.send(json.dumps(first))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=20)
            assert closed.value.rcvd.code == code
    with connect(live.ws_url, compression=None) as ws:
        ws.send(json.dumps({"type": "auth", "api_key": live.keys["device"]}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
        assert closed.value.rcvd.code == 4403 and "device" in closed.value.rcvd.reason


def test_reconnect_gets_the_current_values(start_live) -> None:
    live = start_live()
    pid = live.ids["point"]
    with live.client() as ws:
        ws.send(json.dumps({"type": "subscribe", "points": [pid]}))
        expect(ws, "subscribed")
        expect(ws, "readings")
    live.commit_reading(pid, 333.0)  # while disconnected
    with live.client() as ws:
        ws.send(json.dumps({"type": "subscribe", "points": [pid]}))
        expect(ws, "subscribed")
        assert [r["value"] for r in expect(ws, "readings")["items"]] == [333.0]


def test_a_lost_database_connection_is_reported_as_a_gap(start_live) -> None:
    live = start_live()
    with live.client() as ws:
        ws.send(json.dumps({"type": "subscribe", "alarms": [SITE], "points": [live.ids["point"]]}))
        expect(ws, "subscribed")
        expect(ws, "readings")
        with psycopg.connect(live.url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            ).fetchall()
        assert killed
        assert "missed" in expect(ws, "gap")["reason"]
        expect(ws, "readings")  # fresh values after the gap
        wait_for(lambda: live.app.state.hub.connected.is_set(), message="the live feed to listen again")
        live.alarm(alarm_id=9, site=SITE, area="formation")
        assert expect(ws, "alarm")["event"]["alarm_id"] == 9


def test_a_client_too_slow_for_alarm_events_is_disconnected_with_a_reason(start_live) -> None:
    live = start_live(ws_alarm_queue=20)
    hub = live.app.state.hub
    with live.client() as ws:
        ws.send(json.dumps({"type": "subscribe", "alarms": [SITE]}))
        expect(ws, "subscribed")
        # the client stops reading; alarm events keep coming, until the buffers are full and 20 wait
        padding = os.urandom(3000).hex()
        with psycopg.connect(live.url) as conn:
            for n in range(4000):
                body = {
                    "alarm_id": n,
                    "site": SITE,
                    "kind": "raise",
                    "state": "active_unacked",
                    "at": "2026-01-01T00:00:00Z",
                    "message": padding,
                }
                conn.execute("SELECT pg_notify(%s, %s)", (channels.ALARMS, json.dumps(body)))
        wait_for(lambda: any(s.overflow for s in hub.sessions) or not hub.sessions, message="the overflow")
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append(expect(ws, "alarm")["event"]["alarm_id"])
    assert closed.value.rcvd.code == 4008 and "too slow" in closed.value.rcvd.reason
    assert received == list(range(len(received)))  # what arrived is complete and in order
    assert 0 < len(received) < 4000


def test_a_site_subscription_follows_configuration_changes(start_live) -> None:
    import httpx

    live = start_live()
    with live.client("admin") as ws:
        ws.send(json.dumps({"type": "subscribe", "sites": [SITE]}))
        before = expect(ws, "subscribed")["points"]
        expect(ws, "readings")
        base = live.ws_url.replace("ws://", "http://").removesuffix("/api/v1/ws")
        body = {
            "area_id": live.ids["area"],
            "code": "gas-09",
            "name": "新探测器",
            "kind": "gas_detector",
            "points": [{"key": "h2_ppm", "name": "氢气", "quantity": "h2"}],
        }
        created = httpx.post(
            f"{base}/api/v1/devices", json=body, timeout=30, headers={"Authorization": f"Bearer {live.token('admin')}"}
        )
        assert created.status_code == 201
        hub = live.app.state.hub
        new_point = wait_for(
            lambda: next((p for p, meta in hub.registry.meta.items() if meta[1] == "gas-09"), None),
            message="the registry reload after config_changed",
        )
        wait_for(lambda: any(new_point in s.points for s in hub.sessions), message="the subscription to grow")
        live.commit_reading(new_point, 12.5)
        update = expect(ws, "readings")
        assert [(r["point_id"], r["value"]) for r in update["items"]] == [(new_point, 12.5)]
        assert len(next(iter(hub.sessions)).points) == before + 1


#: What each principal gets from the WebSocket: "welcome", or the close code.
WS_EXPECT = {
    "anon": 4401,
    "expired": 4401,
    "device": 4403,
    "other_site": "welcome",
    "viewer": "welcome",
    "regulator": "welcome",
    "operator": "welcome",
    "ehs_manager": "welcome",
    "admin": "welcome",
}


def test_websocket_principals(start_live) -> None:
    live = start_live()
    for who, expected in WS_EXPECT.items():
        first = (
            {"type": "subscribe", "sites": [SITE]}
            if who == "anon"
            else {"type": "auth", "api_key": live.keys["device"]}
            if who == "device"
            else {"type": "auth", "token": live.token("admin" if who == "expired" else who, expired=who == "expired")}
        )
        with connect(live.ws_url, compression=None) as ws:
            ws.send(json.dumps(first))
            if expected == "welcome":
                assert expect(ws, "welcome")["name"] == who
                ws.send(json.dumps({"type": "subscribe", "sites": [SITE], "alarms": [SITE]}))
                errors = expect(ws, "subscribed")["errors"]
                assert errors == (
                    [f"sites: {SITE!r} is not in your scope", f"alarms: {SITE!r} is not in your scope"]
                    if who == "other_site"
                    else []
                ), who
            else:
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=20)
                assert closed.value.rcvd.code == expected, who
