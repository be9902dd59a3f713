"""The plant registry over the API: scoped reads with keyset pages, and admin writes that go through
core.plant (validated as a whole, a config revision, the config_changed notification, an audit entry)."""

from __future__ import annotations

import psycopg
import pytest

from core.plant import export_plant
from tests.api.conftest import SITE, World

pytestmark = pytest.mark.db


def test_lists_are_keyset_pages(world: World) -> None:
    seen, after = [], None
    while True:
        reply = world.client.get(
            "/api/v1/points", headers=world.headers("admin"), params={"limit": 2, **({"after": after} if after else {})}
        ).json()
        seen += [p["id"] for p in reply["items"]]
        after = reply["next"]
        if after is None:
            break
    with world.db() as conn:
        assert seen == [r[0] for r in conn.execute("SELECT id FROM point ORDER BY id").fetchall()]
    bad = world.client.get("/api/v1/points", headers=world.headers("admin"), params={"after": "garbage"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.after"


def test_site_scope_and_filters(world: World) -> None:
    viewer = world.headers("viewer")
    sites = world.client.get("/api/v1/sites", headers=viewer).json()["items"]
    assert [s["code"] for s in sites] == [SITE]
    assert world.client.get("/api/v1/devices", headers=viewer, params={"site": "s2"}).status_code == 403
    assert world.client.get("/api/v1/devices", headers=viewer, params={"site": "nowhere"}).status_code == 403
    assert (
        world.client.get("/api/v1/devices", headers=world.headers("admin"), params={"site": "nowhere"}).status_code
        == 404
    )
    ww = world.client.get("/api/v1/devices", headers=viewer, params={"area_id": world.ids["ww_area"]}).json()
    assert [d["code"] for d in ww["items"]] == ["ww-01"]


def test_regulators_see_compliance_areas_only(world: World) -> None:
    regulator = world.headers("regulator")
    areas = world.client.get("/api/v1/areas", headers=regulator).json()["items"]
    assert [a["process"] for a in areas] == ["wastewater"]
    points = world.client.get("/api/v1/points", headers=regulator).json()["items"]
    assert {p["key"] for p in points} == {"ph_ph", "cod_mg_l"}
    latest = world.client.get("/api/v1/latest", headers=regulator).json()
    assert {r["point_id"] for r in latest} == {world.ids["ww_point"]}


def test_admin_adds_a_device_through_the_plant_configuration(world: World) -> None:
    with world.db() as conn:
        conn.execute("LISTEN config_changed")
        body = {
            "area_id": world.ids["ww_area"],
            "code": "ww-02",
            "name": "氨氮仪",
            "kind": "water_analyser",
            "points": [{"key": "ammonia_mg_l", "name": "氨氮", "quantity": "ammonia"}],
        }
        reply = world.client.post("/api/v1/devices", headers=world.headers("admin"), json=body)
        assert reply.status_code == 201, reply.text
        assert reply.json()["area"] == "wastewater" and reply.json()["site"] == SITE
        revision = conn.execute("SELECT max(id), (array_agg(source ORDER BY id DESC))[1] FROM config_revision")
        revision_id, source = revision.fetchone()
        assert source == "api (user:admin)"
        assert [n.payload for n in conn.notifies(timeout=5, stop_after=1)] == [str(revision_id)]
        actor, detail = conn.execute(
            "SELECT actor, detail FROM audit_entry WHERE action = 'config.device.create'"
        ).fetchone()
        assert actor == "user:admin" and detail["revision"] == revision_id and detail["site"] == SITE
        exported = export_plant(conn=conn, site=SITE)
    ww = next(a for a in exported.sites[0].areas if a.code == "wastewater")
    assert [d.code for d in ww.devices] == ["ww-01", "ww-02"]
    assert ww.devices[1].points[0].unit == "mg_l"  # completed by the same rules as a YAML file


def test_invalid_writes_name_the_field_and_change_nothing(world: World) -> None:
    admin = world.headers("admin")
    body = {
        "area_id": world.ids["area"],
        "code": "x-1",
        "name": "x",
        "kind": "gas_detector",
        "points": [{"key": "h2_ppm", "name": "氢气", "quantity": "hydrogen"}],
    }
    reply = world.client.post("/api/v1/devices", headers=admin, json=body)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"].startswith("body.points.0")
    assert "unknown quantity 'hydrogen'" in reply.json()["detail"]
    dup = world.client.post(
        "/api/v1/devices",
        headers=admin,
        json={**body, "code": "gas-01", "points": [{"key": "h2_ppm", "name": "氢气", "quantity": "h2"}]},
    )
    assert dup.status_code == 409
    with world.db() as conn:
        assert conn.execute("SELECT count(*) FROM config_revision").fetchone()[0] == 1  # the seed only


def test_retiring_keeps_the_registry_consistent(world: World) -> None:
    admin = world.headers("admin")
    with world.db() as conn:
        em = conn.execute("SELECT id FROM device WHERE code = 'em-01'").fetchone()[0]
    refused = world.client.delete(f"/api/v1/devices/{em}", headers=admin)
    assert refused.status_code == 409 and "e-main" in refused.json()["detail"]
    assert world.client.delete(f"/api/v1/areas/{world.ids['area']}", headers=admin).status_code == 409
    assert world.client.delete(f"/api/v1/meters/{world.ids['meter']}", headers=admin).status_code == 204
    assert world.client.delete(f"/api/v1/devices/{em}", headers=admin).status_code == 204
    gone = world.client.get(f"/api/v1/devices/{em}", headers=admin).json()
    assert gone["retired_at"] is not None
    listed = world.client.get("/api/v1/points", headers=admin, params={"device_id": em}).json()["items"]
    assert listed == []
    with psycopg.connect(world.url) as conn:  # readings are kept
        assert conn.execute("SELECT count(*) FROM point WHERE device_id = %s", (em,)).fetchone()[0] == 1


def test_meter_writes_use_ids_and_check_the_site(world: World) -> None:
    admin = world.headers("admin")
    with world.db() as conn:
        energy = conn.execute("SELECT point_id FROM meter WHERE id = %s", (world.ids["meter"],)).fetchone()[0]
    body = {
        "site_id": world.ids["site"],
        "code": "e-sub",
        "name": "分表",
        "medium": "electricity",
        "point_id": energy,
        "parent_id": world.ids["meter"],
    }
    created = world.client.post("/api/v1/meters", headers=admin, json=body)
    assert created.status_code == 201 and created.json()["parent_id"] == world.ids["meter"]
    wrong = world.client.post(
        "/api/v1/meters", headers=admin, json={**body, "code": "e-x", "point_id": world.ids["point"]}
    )
    assert wrong.status_code == 409 and "counter" in wrong.json()["detail"]
    foreign = world.client.post(
        "/api/v1/meters", headers=admin, json={**body, "code": "e-y", "point_id": world.ids["other_point"]}
    )
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "body.point_id"
    detached = world.client.patch(f"/api/v1/meters/{created.json()['id']}", headers=admin, json={"parent_id": None})
    assert detached.status_code == 200 and detached.json()["parent_id"] is None
