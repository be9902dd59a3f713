"""The audit record over the API: who may read what, and verification naming a tampered entry."""

from __future__ import annotations

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.db


def test_verification_names_a_tampered_entry(world: World) -> None:
    admin = world.headers("admin")
    intact = world.client.get("/api/v1/audit/verify", headers=admin).json()
    assert intact["intact"] is True and intact["entries"] > 5 and intact["problems"] == []
    with world.db() as conn:  # what someone with database rights could do
        conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
        conn.execute("UPDATE audit_entry SET actor = 'cli:nobody' WHERE seq = 3")
        conn.execute("DELETE FROM audit_entry WHERE seq = 5")
        conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    report = world.client.get("/api/v1/audit/verify", headers=world.headers("regulator")).json()
    assert report["intact"] is False
    assert {(p["seq"], p["kind"]) for p in report["problems"]} >= {(3, "edited"), (5, "deleted")}


def test_admins_read_everything_regulators_compliance_actions_of_their_sites(world: World) -> None:
    world.client.post("/api/v1/auth/token", data={"username": "login", "password": "wrong password!"})
    world.client.get(
        "/api/v1/exports/readings", headers=world.headers("regulator"), params={"point_id": world.ids["ww_point"]}
    )
    world.client.post("/api/v1/sites", headers=world.headers("admin"), json={"code": "s9", "name": "九厂"})
    everything = world.client.get("/api/v1/audit", headers=world.headers("admin"), params={"limit": 1000}).json()
    actions = {e["action"] for e in everything["items"]}
    assert {"auth.login_failed", "export.readings", "config.site.create", "user.create"} <= actions
    regulator = world.client.get("/api/v1/audit", headers=world.headers("regulator")).json()["items"]
    assert [e["action"] for e in regulator] == ["export.readings"]  # not logins, not another site's config
    filtered = world.client.get("/api/v1/audit", headers=world.headers("admin"), params={"action": "auth."}).json()
    assert {e["action"] for e in filtered["items"]} == {"auth.login_failed"}


def test_pages_follow_the_chain_backwards(world: World) -> None:
    admin = world.headers("admin")
    first = world.client.get("/api/v1/audit", headers=admin, params={"limit": 3}).json()
    second = world.client.get("/api/v1/audit", headers=admin, params={"limit": 3, "after": first["next"]}).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 6
