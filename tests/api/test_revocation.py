"""Issue 12 item 5 (sessions end with their credential) and item 7 (junk credentials take no pool connection):
live sessions close with 4401 when a user is disabled, changes password or scope, or a key is revoked; REST calls
with the old token are refused at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api import apikeys
from api.main import create_app
from api.policy import Role, console
from tests.api.conftest import PASSWORD, SITE, Template, World, settings_for
from tests.api.test_ws import Live, expect

pytestmark = pytest.mark.db
API = "/api/v1"


@pytest.fixture
def start_live(world_url: str, api_template: Template, serve) -> Callable[..., Live]:
    """An app on a real uvicorn server, with API settings overridden (as tests/api/test_ws.py)."""

    def start(**api_overrides: Any) -> Live:
        core, api = settings_for(world_url)
        for key, value in api_overrides.items():
            setattr(api, key, value)
        app = create_app(core, api)
        return Live(world_url, f"ws://{serve(app)}/api/v1/ws", app, dict(api_template.ids), dict(api_template.keys))

    return start


def _closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; return its close code and reason (waits for readiness, not a timing)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=30)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def _admin(live: Live) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.token('admin')}"}


def _key(live: Live, role: Role = Role.VIEWER) -> tuple[int, str]:
    with psycopg.connect(live.url) as conn:
        key_id, key = apikeys.create_key(
            conn=conn,
            actor=console("test"),
            name="screen",
            role=role,
            sites=[SITE],
            all_sites=False,
            expires_at=None,
            now=datetime.now(UTC),
        )
        conn.commit()
    return key_id, key


def _http(live: Live) -> TestClient:
    return TestClient(live.app)


@pytest.mark.parametrize("change", ["disable", "scope", "password_reset", "role"])
def test_a_live_user_session_closes_when_the_user_changes(start_live, change: str) -> None:
    live = start_live()
    ws = live.client("viewer")
    http = _http(live)
    token = live.token("viewer")
    target = live.ids["user:viewer"]
    body = {"disable": {"disabled": True}, "scope": {"sites": ["s2"]}, "role": {"role": "operator"}}.get(change)
    if body is None:
        answer = http.post(f"{API}/users/{target}/password", json={}, headers=_admin(live))
    else:
        answer = http.patch(f"{API}/users/{target}", json=body, headers=_admin(live))
    assert answer.status_code == 200
    code, reason = _closed_with(ws)  # at once, by NOTIFY: not when the token expires
    assert code == 4401 and "sign in again" in reason
    assert http.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_password_change_closes_the_other_live_sessions(start_live) -> None:
    live = start_live()
    ws = live.client("viewer")
    http = _http(live)
    answer = http.post(
        f"{API}/auth/password",
        headers={"Authorization": f"Bearer {live.token('viewer')}"},
        json={"current_password": PASSWORD, "new_password": "another long password 42"},
    )
    assert answer.status_code == 200
    assert _closed_with(ws)[0] == 4401
    fresh = answer.json()["access_token"]  # the session that changed it goes on with its new token
    assert http.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_a_live_api_key_session_closes_when_the_key_is_revoked(start_live) -> None:
    live = start_live()
    key_id, key = _key(live)
    ws = connect(live.ws_url, compression=None, open_timeout=60)
    ws.send(json.dumps({"type": "auth", "api_key": key}))
    assert expect(ws, "welcome")["expires_at"] is None
    assert _http(live).delete(f"{API}/api-keys/{key_id}", headers=_admin(live)).status_code == 204
    code, _ = _closed_with(ws)
    assert code == 4401
    assert _http(live).get(f"{API}/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_a_revocation_without_notify_is_found_by_the_periodic_check(start_live) -> None:
    """A change written behind the API's back (no NOTIFY) still ends the session at the next check."""
    live = start_live(ws_recheck_s=0.2)
    key_id, key = _key(live)
    ws = connect(live.ws_url, compression=None, open_timeout=60)
    ws.send(json.dumps({"type": "auth", "api_key": key}))
    expect(ws, "welcome")
    user_ws = live.client("viewer")
    with psycopg.connect(live.url, autocommit=True) as conn:
        conn.execute("UPDATE api_key SET revoked_at = now() WHERE id = %s", (key_id,))
        conn.execute("UPDATE app_user SET disabled_at = now() WHERE username = 'viewer'")
    assert _closed_with(ws)[0] == 4401
    assert _closed_with(user_ws)[0] == 4401


def test_an_expiring_api_key_ends_its_live_session(start_live) -> None:
    live = start_live()
    key_id, key = _key(live)
    with psycopg.connect(live.url, autocommit=True) as conn:
        conn.execute("UPDATE api_key SET expires_at = now() + interval '5 seconds' WHERE id = %s", (key_id,))
    ws = connect(live.ws_url, compression=None, open_timeout=60)
    ws.send(json.dumps({"type": "auth", "api_key": key}))
    # welcome (with the key's expiry), then 4401 at the expiry; before, such a session never ended
    assert _closed_with(ws)[0] == 4401


def test_unauthenticated_websockets_count_toward_the_client_limit(start_live) -> None:
    live = start_live(ws_max_clients=2)
    first = connect(live.ws_url, compression=None, open_timeout=60)  # accepted, says nothing yet
    second = connect(live.ws_url, compression=None, open_timeout=60)
    third = connect(live.ws_url, compression=None, open_timeout=60)
    assert _closed_with(third)[0] == 1013  # before: only signed-in sessions counted
    second.close()
    first.send(json.dumps({"type": "auth", "token": live.token("viewer")}))
    expect(first, "welcome")
    fourth = live.client("viewer")  # the place second held is free again
    fourth.close()
    first.close()


def test_junk_credentials_are_refused_without_a_pool_connection(world_url: str) -> None:
    """Every connection of the pool is held: requests whose credentials fail without the database answer 401
    anyway (before, each waited for a connection it did not need)."""
    core, api = settings_for(world_url)
    core.db_pool_max = 1
    app = create_app(core, api)
    with TestClient(app) as client:
        world = World(world_url, client, {}, {})
        expired = world.token("admin", expired=True)
        held = app.state.pool.getconn()
        try:
            for headers in (
                {},
                {"Authorization": "Bearer nonsense"},
                {"Authorization": f"Bearer {expired}"},
                {"X-API-Key": "ehs_notakey"},
            ):
                for path in ("/api/v1/alarms", "/api/v1/users", "/api/v1/audit/verify", "/api/v1/latest"):
                    assert client.get(path, headers=headers).status_code == 401, (path, headers)
        finally:
            app.state.pool.putconn(held)
        assert client.get("/api/v1/auth/me", headers=world.headers("viewer")).status_code == 200
