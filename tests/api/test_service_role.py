"""The API runs as the least-privilege service role of ``ehs db roles`` (issue 12 item 6): signing in, acting on
alarms, reading and verifying the audit record all work, and the role cannot rewrite the record."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from starlette.testclient import TestClient

from api.main import create_app
from core.roles import setup_service_role
from tests.api import alarm_world
from tests.api.conftest import PASSWORD, World, settings_for

pytestmark = pytest.mark.db


def test_the_api_works_as_the_service_role(world_url: str, api_template) -> None:
    role = f"ehs_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(world_url) as conn:
        setup_service_role(conn, role=role)
    ids = alarm_world.seed(world_url)
    try:
        sep = "&" if "?" in world_url else "?"  # the embedded server's URL already has a query (host=...)
        core, api = settings_for(f"{world_url}{sep}options=-crole%3D{role}")
        with TestClient(create_app(core, api)) as client:
            world = World(world_url, client, {}, {})
            with client.app.state.pool.connection() as conn:
                assert conn.execute("SELECT current_user").fetchone()["current_user"] == role
            signin = client.post("/api/v1/auth/token", data={"username": "operator", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {signin.json()['access_token']}"}
            assert client.post(f"/api/v1/alarms/{ids['alarm']}/ack", json={}, headers=headers).status_code == 200
            assert client.get("/api/v1/audit/verify", headers=world.headers("admin")).json()["intact"] is True
            with client.app.state.pool.connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    finally:
        with psycopg.connect(world_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
