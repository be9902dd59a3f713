"""Issue 12 item 7: link tokens stay out of the access log, expensive reads are rate-limited per caller, and a
wrong password confirming a change counts toward the lockout and is audited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from alerts.notifications import links
from api.main import create_app
from tests.api.conftest import PASSWORD, SECRET, World, settings_for
from tests.api.test_authz_matrix import _mfa

pytestmark = pytest.mark.db
API = "/api/v1"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_link_tokens_are_redacted_in_the_access_log(world_url: str, serve) -> None:
    core, api = settings_for(world_url)
    app = create_app(core, api)
    address = serve(app)  # uvicorn configures its loggers after create_app
    access = logging.getLogger("uvicorn.access")
    records, level = _Records(), access.level
    access.addHandler(records)
    access.setLevel(logging.INFO)
    try:
        token = links.make(SECRET, alarm_id=1, user_id=None, now=datetime.now(UTC), ttl=timedelta(minutes=5))
        for path in (f"/api/v1/links/{token}", f"/api/v1/links/{token}/ack"):
            httpx.request("GET" if path.endswith(token) else "POST", f"http://{address}{path}", json={})
    finally:
        access.removeHandler(records)
        access.setLevel(level)
    assert len(records.lines) == 2
    assert all("/api/v1/links/***" in line and token not in line for line in records.lines), records.lines


def _limited_app(world_url: str) -> TestClient:
    core, api = settings_for(world_url)
    api.heavy_rate_limit = "2/minute"
    return TestClient(create_app(core, api))


def test_audit_verification_is_rate_limited_per_caller(world_url: str, api_template) -> None:
    with _limited_app(world_url) as client:
        world = World(world_url, client, {}, {})
        codes = [client.get(f"{API}/audit/verify", headers=world.headers("admin")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = client.get(f"{API}/audit/verify", headers=world.headers("admin"))
        assert int(refused.headers["Retry-After"]) >= 1
        assert client.get(f"{API}/audit/verify", headers=world.headers("regulator")).status_code == 200


def test_long_kpi_periods_are_rate_limited_short_ones_are_not(world_url: str, api_template) -> None:
    with _limited_app(world_url) as client:
        world = World(world_url, client, {}, {})
        headers = world.headers("ehs_manager")
        until = datetime.now(UTC)
        short = {"since": (until - timedelta(days=1)).isoformat(), "until": until.isoformat()}
        long = {"since": (until - timedelta(days=90)).isoformat(), "until": until.isoformat()}
        assert [client.get(f"{API}/alarms/kpi", params=short, headers=headers).status_code for _ in range(4)] == [
            200
        ] * 4
        assert [client.get(f"{API}/alarms/kpi", params=long, headers=headers).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]


def _audited(world: World, action: str) -> list[dict]:
    with world.db() as conn:
        return [r[0] for r in conn.execute("SELECT detail FROM audit_entry WHERE action = %s ORDER BY seq", (action,))]


def test_wrong_current_passwords_are_audited_and_lock_the_account(world: World) -> None:
    headers = world.headers("login")
    for _ in range(5):  # the lockout threshold
        wrong = world.client.post(
            f"{API}/auth/password",
            headers=headers,
            json={"current_password": "not my password", "new_password": "whatever 12345"},
        )
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "body.current_password"
    assert [d["reason"] for d in _audited(world, "auth.password_change_failed")] == ["bad_password"] * 5
    assert len(_audited(world, "auth.lockout")) == 1
    locked = world.client.post(
        f"{API}/auth/password", headers=headers, json={"current_password": PASSWORD, "new_password": "whatever 12345"}
    )
    assert locked.status_code == 403  # not even the right password while locked
    signin = world.client.post(f"{API}/auth/token", data={"username": "login", "password": PASSWORD})
    assert signin.status_code == 401  # the lockout is the login's


def test_a_wrong_password_on_mfa_disable_is_audited_and_counted(world: World) -> None:
    body = _mfa(world, "login", enable=False)["json"]  # enrolled; body holds the right password and code
    headers = world.headers("login")
    wrong = world.client.post(f"{API}/auth/mfa/disable", headers=headers, json={**body, "password": "not it"})
    assert wrong.status_code == 422
    assert _audited(world, "auth.mfa_disable_failed") == [{"reason": "bad_password", "client": "testclient"}]
    with world.db() as conn:
        assert conn.execute("SELECT failed_logins FROM app_user WHERE username = 'login'").fetchone()[0] == 1
    assert world.client.post(f"{API}/auth/mfa/disable", headers=headers, json=body).status_code == 204
