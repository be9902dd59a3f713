"""Reduction projects whose savings come from a meter's energy baseline (ISO 50006 normalised savings), checked by
hand on the API test world: project "led" of carbon_world names meter e-main (electricity), whose monthly
baseline is energy = 1000 + 2 x output kWh; the Jiangsu 2023 grid factor is 0.5827 kg/kWh."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from carbon import service
from carbon.service import CarbonError
from tests.api import carbon_world
from tests.api.conftest import SITE, World

pytestmark = pytest.mark.db
MARCH = {"start": "2025-03-01T00:00:00+08:00", "energy": 1700, "variables": {"output": 500}}
APRIL = {"start": "2025-04-01T00:00:00+08:00", "energy": 9999, "variables": {"output": 1}}


def test_the_seeded_baseline_is_the_hand_one() -> None:
    model = carbon_world.meter_baseline()
    assert model.intercept == pytest.approx(1000) and model.coefficients["output"] == pytest.approx(2)


def test_project_savings_from_the_meter_baseline_by_hand(world: World) -> None:
    carbon_world.seed(world.url)
    c, h = world.client, world.headers("ehs_manager")
    # March: output 500 → expected 1000 + 2 x 500 = 2000 kWh, metered 1700 → 300 kWh saved x 0.5827 kg/kWh
    # = 174.81 kg = 0.17481 t; April lies outside the month and is left out.
    body = {"site": SITE, "project": "led", "period": "2025-03", "periods": [MARCH, APRIL]}
    r = c.post("/api/v1/carbon/projects/baseline-savings", headers=h, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["periods"] == 1 and got["meter"] == "e-main" and got["granularity"] == "monthly"
    assert got["expected_kwh"] == pytest.approx(2000) and got["actual_kwh"] == 1700
    assert got["saved_kwh"] == pytest.approx(300) and got["improvement"] == pytest.approx(0.15)
    assert got["factor_kg_per_kwh"] == 0.5827 and got["tco2e"] == pytest.approx(0.17481)
    # not recorded unless asked
    led = next(
        p for p in c.get("/api/v1/carbon/projects", headers=h, params={"site": SITE}).json() if p["code"] == "led"
    )
    assert led["months"] == 0
    r = c.post("/api/v1/carbon/projects/baseline-savings", headers=h, json={**body, "record": True})
    assert r.status_code == 200, r.text
    led = next(
        p for p in c.get("/api/v1/carbon/projects", headers=h, params={"site": SITE}).json() if p["code"] == "led"
    )
    assert led["months"] == 1 and led["saved_tco2e"] == pytest.approx(0.17481)
    with psycopg.connect(world.url) as conn:
        method = conn.execute(
            "SELECT method FROM carbon_project_saving ps JOIN carbon_project p ON p.id = ps.project_id "
            "WHERE p.code = 'led' AND ps.period_start = '2025-03-01'"
        ).fetchone()[0]
    assert method.startswith("energy baseline ") and "of meter e-main x grid:jiangsu:2023:average" in method
    # refused: a project without a baseline meter (409), a month without reporting periods (422), a missing
    # relevant variable (422)
    r = c.post("/api/v1/carbon/projects/baseline-savings", headers=h, json={**body, "project": "vfd"})
    assert r.status_code == 409 and "names no baseline meter" in r.text
    r = c.post("/api/v1/carbon/projects/baseline-savings", headers=h, json={**body, "period": "2025-05"})
    assert r.status_code == 422
    bad = {**MARCH, "variables": {"shifts": 3}}
    r = c.post("/api/v1/carbon/projects/baseline-savings", headers=h, json={**body, "periods": [bad]})
    assert r.status_code == 422


def test_a_project_names_only_a_meter_with_a_current_baseline(world: World) -> None:
    carbon_world.seed(world.url)
    c, h = world.client, world.headers("ehs_manager")
    new = {"site": SITE, "name": "照明改造", "baseline_tco2e_per_year": 10, "started_on": "2025-01-01"}
    r = c.post(
        "/api/v1/carbon/projects",
        headers=h,
        json={**new, "code": "led-daily", "baseline_meter": "e-main", "baseline_granularity": "daily"},
    )
    assert r.status_code == 409 and "no current daily energy baseline" in r.text
    r = c.post("/api/v1/carbon/projects", headers=h, json={**new, "code": "led-x", "baseline_meter": "nope"})
    assert r.status_code == 404
    with psycopg.connect(world.url) as conn, pytest.raises(CarbonError, match="no current hourly"):
        service.add_project(
            conn=conn,
            site=SITE,
            code="led-h",
            name="x",
            baseline_tco2e_per_year=1,
            started_on=date(2025, 1, 1),
            actor="t",
            baseline_meter="e-main",
            baseline_granularity="hourly",
        )
