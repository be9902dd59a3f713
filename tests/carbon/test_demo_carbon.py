"""`ehs up --demo` loads the carbon factor library, the demo routing and the demo site's factor regions, once."""

from __future__ import annotations

import psycopg
import pytest

from cli.up import _demo_carbon
from core.plant import apply_plant, load_plant
from tests.support import REPO_ROOT, small_plant, unique_code

pytestmark = pytest.mark.db


def _state(conn: psycopg.Connection) -> tuple:
    return (
        conn.execute("SELECT version, active FROM carbon_factor_set ORDER BY version").fetchall(),
        conn.execute("SELECT count(*) FROM carbon_factor").fetchone()[0],
        conn.execute(
            "SELECT s.code, r.spec->'product'->>'name' FROM carbon_routing r JOIN site s ON s.id = r.site_id"
        ).fetchall(),
        conn.execute(
            "SELECT s.code, c.province, c.grid_region FROM carbon_site_setting c JOIN site s ON s.id = c.site_id"
        ).fetchall(),
        conn.execute("SELECT action, actor FROM audit_entry WHERE action LIKE 'carbon.%%' ORDER BY seq").fetchall(),
    )


def test_the_demo_loads_factors_routing_and_regions_idempotently(database_url: str) -> None:
    demo = load_plant(REPO_ROOT / "examples" / "demo-plant.yaml")
    other = unique_code("x")
    with psycopg.connect(database_url) as conn, conn.transaction():
        apply_plant(conn=conn, plant=demo, source="test")
        apply_plant(conn=conn, plant=small_plant(other), source="test")  # not a site of the demo plant: no routing
    _demo_carbon(database_url)
    with psycopg.connect(database_url) as conn:
        versions, rows, routings, settings, audit = _state(conn)
        assert len(versions) == 1 and versions[0][1] is True and rows > 10
        assert [code for code, _ in routings] == [demo.sites[0].code] and routings[0][1]
        assert settings == [(demo.sites[0].code, "jiangsu", "east")]
        assert [a for a, _ in audit].count("carbon.routing") == 1 and {who for _, who in audit} == {"demo"}
        before = _state(conn)
    _demo_carbon(database_url)  # a second `ehs up --demo` changes nothing
    with psycopg.connect(database_url) as conn:
        assert _state(conn) == before
