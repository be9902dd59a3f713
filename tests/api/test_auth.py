"""Sign-in: lockout after repeated failures, TOTP enrolment and login, refresh rotation and reuse detection,
logout, revocation when a user is disabled, API keys, and the rate limit on authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from api import security
from api.main import create_app
from tests.api.conftest import PASSWORD, World, settings_for

pytestmark = pytest.mark.db


def _login(world: World, username: str = "login", password: str = PASSWORD, totp: str | None = None):
    data = {"username": username, "password": password, **({"totp": totp} if totp else {})}
    return world.client.post("/api/v1/auth/token", data=data)


def _audit(world: World, action: str) -> list[tuple]:
    with world.db() as conn:
        return conn.execute(
            "SELECT actor, target, detail FROM audit_entry WHERE action = %s ORDER BY seq", (action,)
        ).fetchall()


def test_login_issues_tokens_that_work_and_is_audited(world: World) -> None:
    reply = _login(world, "LOGIN")  # usernames are case-insensitive
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "bearer" and 800 < body["expires_in"] <= 900
    me = world.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["name"] == "login" and me.json()["role"] == "viewer"
    assert [(a, t) for a, t, _ in _audit(world, "auth.login")] == [("user:login", "user/login")]


def test_wrong_password_and_unknown_user_get_the_same_answer(world: World) -> None:
    wrong, unknown = _login(world, password="not it at all"), _login(world, username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"
    reasons = [d["reason"] for _, _, d in _audit(world, "auth.login_failed")]
    assert reasons == ["bad_password", "unknown_user"]


def test_password_typed_into_the_username_field_is_not_recorded(world: World) -> None:
    _login(world, username="Tr0ub4dor&3 secret!")
    ((actor, target, _),) = _audit(world, "auth.login_failed")
    assert "Tr0ub4dor" not in actor + target


def test_lockout_after_repeated_failures_then_expiry(world: World) -> None:
    for _ in range(5):
        assert _login(world, password="wrong password").status_code == 401
    assert len(_audit(world, "auth.lockout")) == 1
    locked = _login(world)  # the right password, but the account is locked
    assert locked.status_code == 401
    assert _audit(world, "auth.login_failed")[-1][2]["reason"] == "locked"
    with world.db() as conn:  # the lockout ends (15 minutes later)
        conn.execute("UPDATE app_user SET locked_until = now() - interval '1 second' WHERE username = 'login'")
    assert _login(world).status_code == 200


def test_admin_can_unlock(world: World) -> None:
    for _ in range(5):
        _login(world, password="wrong password")
    assert _login(world).status_code == 401
    user_id = world.ids["user:login"]
    assert world.client.post(f"/api/v1/users/{user_id}/unlock", headers=world.headers("admin")).status_code == 204
    assert _login(world).status_code == 200


def test_totp_enrolment_and_login(world: World) -> None:
    token = _login(world).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    setup = world.client.post("/api/v1/auth/mfa/setup", headers=auth).json()
    assert setup["provisioning_uri"].startswith("otpauth://totp/ehs-monitor:login?secret=")
    secret = setup["secret"]
    bad = world.client.post("/api/v1/auth/mfa/enable", headers=auth, json={"code": "000000"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.code"
    now = datetime.now(UTC)
    enrolled = world.client.post(
        "/api/v1/auth/mfa/enable", headers=auth, json={"code": security.totp_now(secret, now - timedelta(seconds=30))}
    )
    assert enrolled.status_code == 204
    with world.db() as conn:  # the seed is stored sealed, never in the clear
        stored = conn.execute("SELECT mfa_secret FROM app_user WHERE username = 'login'").fetchone()[0]
    assert secret.encode() not in bytes(stored)

    needs = _login(world)
    assert needs.status_code == 401 and needs.json()["mfa_required"] is True
    assert _login(world, totp="123456").status_code == 401
    code = security.totp_now(secret, now)
    assert _login(world, totp=code).status_code == 200
    assert _login(world, totp=code).status_code == 401  # a code works once (RFC 6238 5.2)


def test_wrong_totp_codes_count_towards_lockout(world: World) -> None:
    token = _login(world).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    secret = world.client.post("/api/v1/auth/mfa/setup", headers=auth).json()["secret"]
    code = security.totp_now(secret, datetime.now(UTC))
    assert world.client.post("/api/v1/auth/mfa/enable", headers=auth, json={"code": code}).status_code == 204
    for _ in range(5):
        assert _login(world, totp="000000").status_code == 401
    assert len(_audit(world, "auth.lockout")) == 1


def test_refresh_rotates_and_a_reused_token_revokes_the_session(world: World) -> None:
    first = _login(world).json()
    second = world.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    # the first token again: stolen. The whole session (family) is revoked, including the newest token
    reuse = world.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert world.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert len(_audit(world, "auth.refresh_reuse")) == 1
    with world.db() as conn:  # stored hashed only
        assert (
            conn.execute(
                "SELECT count(*) FROM refresh_token WHERE token_hash = %s", (first["refresh_token"].encode(),)
            ).fetchone()[0]
            == 0
        )


def test_logout_ends_the_session(world: World) -> None:
    pair = _login(world).json()
    assert world.client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code == 204
    assert world.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_disabling_a_user_revokes_their_tokens_at_once(world: World) -> None:
    pair = _login(world).json()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert world.client.get("/api/v1/sites", headers=auth).status_code == 200
    reply = world.client.patch(
        f"/api/v1/users/{world.ids['user:login']}", headers=world.headers("admin"), json={"disabled": True}
    )
    assert reply.status_code == 200 and reply.json()["disabled_at"] is not None
    assert world.client.get("/api/v1/sites", headers=auth).status_code == 401
    assert world.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert _login(world).status_code == 401


def test_changing_the_password_ends_other_sessions(world: World) -> None:
    old = _login(world).json()
    other = {"Authorization": f"Bearer {_login(world).json()['access_token']}"}
    reply = world.client.post(
        "/api/v1/auth/password",
        headers={"Authorization": f"Bearer {old['access_token']}"},
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert reply.status_code == 200
    assert world.client.get("/api/v1/sites", headers=other).status_code == 401
    fresh = {"Authorization": f"Bearer {reply.json()['access_token']}"}
    assert world.client.get("/api/v1/sites", headers=fresh).status_code == 200
    assert _login(world, password="a brand new passphrase").status_code == 200
    weak = world.client.post(
        "/api/v1/auth/password",
        headers=fresh,
        json={"current_password": "a brand new passphrase", "new_password": "short"},
    )
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "body.new_password"


def test_the_last_global_administrator_cannot_be_disabled(world: World) -> None:
    reply = world.client.patch(
        f"/api/v1/users/{world.ids['user:admin']}", headers=world.headers("admin"), json={"disabled": True}
    )
    assert reply.status_code == 409


def test_api_keys_are_shown_once_scoped_and_revocable(world: World) -> None:
    created = world.client.post(
        "/api/v1/api-keys", headers=world.headers("admin"), json={"name": "scada", "role": "viewer", "sites": ["s1"]}
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(f"ehs_{created.json()['prefix']}_")
    listed = world.client.get("/api/v1/api-keys", headers=world.headers("admin")).json()["items"]
    assert all("key" not in item for item in listed)
    as_key = {"X-API-Key": key}
    assert world.client.get("/api/v1/latest", headers=as_key).status_code == 200
    assert world.client.get("/api/v1/latest", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert world.client.get("/api/v1/users", headers=as_key).status_code == 403
    tampered = key[:-2] + ("A" if key[-2] != "A" else "B") + key[-1]
    assert world.client.get("/api/v1/latest", headers={"X-API-Key": tampered}).status_code == 401
    world.client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=world.headers("admin"))
    assert world.client.get("/api/v1/latest", headers=as_key).status_code == 401
    admin_key = world.client.post(
        "/api/v1/api-keys", headers=world.headers("admin"), json={"name": "x", "role": "admin", "all_sites": True}
    )
    assert admin_key.status_code == 422  # keys are never administrators


def test_authentication_is_rate_limited_per_address(world_url: str) -> None:
    core, api = settings_for(world_url)
    api.auth_rate_limit = "3/minute"
    with TestClient(create_app(core, api)) as client:
        codes = [
            client.post("/api/v1/auth/token", data={"username": "x", "password": "y"}).status_code for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        limited = client.post("/api/v1/auth/refresh", json={"refresh_token": "x"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
