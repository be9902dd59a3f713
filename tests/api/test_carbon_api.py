"""The carbon API end to end on the API test world: settings, a bad factor file and a double-claimed serial
refused with line and field, the ledger with dual scope 2, closing and an audited recalculation, the footprint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carbon.factors import DATA_DIR
from carbon.ledger import SITE as SITE_KEY
from carbon.ledger import Activity
from carbon.sources import RowsSource
from tests.api import carbon_world
from tests.api.conftest import SITE, World

pytestmark = pytest.mark.db
FILES = {n: (DATA_DIR / n).read_text(encoding="utf-8") for n in ("grid.csv", "fuel.csv", "heat.csv", "gwp.csv")}
CSV_HEAD = "scheme,serial_prefix,serial_first,serial_last,vintage_year,period_start,period_end,reference\n"


def _source() -> RowsSource:
    t = datetime(2025, 2, 28, 16, tzinfo=UTC)  # 2025-03-01 00:00 in Asia/Shanghai
    rows = []
    while t < datetime(2025, 3, 31, 16, tzinfo=UTC):
        rows += [
            ("area", Activity("formation", "electricity", t, 100.0, "kWh")),
            ("site", Activity(SITE_KEY, "electricity", t, 100.0, "kWh")),
        ]
        t += timedelta(hours=1)
    return RowsSource(rows)


def test_carbon_api_end_to_end(world: World) -> None:
    carbon_world.seed(world.url)
    world.client.app.state.carbon_source = _source()
    c, h, admin = world.client, world.headers("ehs_manager"), world.headers("admin")
    r = c.put("/api/v1/carbon/settings", headers=h, json={"site": SITE, "province": "jiangsu", "grid_region": "east"})
    assert r.status_code == 200 and r.json()["regions"] == ["jiangsu", "east", "CN"]
    bad = c.post(
        "/api/v1/carbon/factors",
        headers=admin,
        json={"version": "x1", "files": {**FILES, "gwp.csv": FILES["gwp.csv"] + "R-99,AR7,10,ref\n"}},
    )
    assert bad.status_code == 422
    assert {"field": "body.files", "message": "gwp.csv:16: basis: 'AR7' is not one of AR5, AR6"} in bad.json()["errors"]
    ok = c.post(
        "/api/v1/carbon/certificates",
        headers=h,
        json={"site": SITE, "csv": CSV_HEAD + "GEC,Q,1,10,2025,2025-03-01,2025-04-01,q1\n"},
    )
    assert ok.status_code == 201
    again = c.post(
        "/api/v1/carbon/certificates",
        headers=h,
        json={
            "site": SITE,
            "csv": CSV_HEAD + "GEC,Q,11,12,2025,2025-03-01,2025-04-01,q2\nGEC,Q,5,5,2025,2025-03-01,2025-04-01,q3\n",
        },
    )
    assert again.status_code == 409 and "certificates.csv:3: serials Q5..Q5 are claimed already" in again.text
    # all rows or none: Q11..Q12 of the refused file were not kept
    assert [
        i["serial_first"] for i in c.get("/api/v1/carbon/instruments", headers=h, params={"site": SITE}).json()
    ] == [1]
    led = c.get("/api/v1/carbon/ledger", headers=h, params={"site": SITE, "period": "2025-03"}).json()
    kwh = 31 * 24 * 100.0
    assert led["totals"]["scope2_location_kg"] == pytest.approx(kwh * 0.5827)
    assert led["totals"]["scope2_market_kg"] == pytest.approx((kwh - 10_000) * 0.6096)
    assert c.post("/api/v1/carbon/periods", headers=h, json={"site": SITE, "period": "2025-03"}).status_code == 201
    assert c.post("/api/v1/carbon/periods", headers=h, json={"site": SITE, "period": "2025-03"}).status_code == 409
    rec = c.post(
        "/api/v1/carbon/periods/recalculate",
        headers=h,
        json={"site": SITE, "period": "2025-03", "reason": "meter replaced"},
    )
    assert rec.status_code == 200 and rec.json()["revision"] == 2
    audit = c.get("/api/v1/audit", headers=admin, params={"limit": 1000}).json()["items"]
    assert any(e["action"] == "carbon.period.recalculate" and e["detail"]["reason"] == "meter replaced" for e in audit)
    fp = c.get(f"/api/v1/carbon/batches/{carbon_world.BATCH}/footprint", headers=h, params={"site": SITE})
    assert fp.status_code == 200 and fp.json()["declared_unit"] == "kgCO2e/kWh" and fp.json()["kg_per_kwh"] > 0
    pdf = c.get(
        f"/api/v1/carbon/batches/{carbon_world.BATCH}/declaration.pdf", headers=h, params={"site": SITE, "lang": "en"}
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert c.get("/api/v1/carbon/batches/none/footprint", headers=h, params={"site": SITE}).status_code == 404


def test_summary_this_month_today_and_hourly_by_hand(world: World) -> None:
    """The phone's and the control room's summary, at 12:00 on 15 March 2025 in Asia/Shanghai: formation used
    100 kWh and drying 50 kWh every hour since 1 March (the site meter 160 kWh: 10 kWh unallocated); the grid
    factor is 0.5827 kg/kWh (location) and 0.6096 kg/kWh (residual mix, no certificates)."""
    from core.clock import FrozenClock

    carbon_world.seed(world.url)
    now = datetime(2025, 3, 15, 4, tzinfo=UTC)
    t, rows = datetime(2025, 2, 28, 16, tzinfo=UTC), []
    while t < datetime(2025, 3, 31, 16, tzinfo=UTC):
        rows += [
            ("area", Activity("formation", "electricity", t, 100.0, "kWh")),
            ("area", Activity("drying", "electricity", t, 50.0, "kWh")),
            ("site", Activity(SITE_KEY, "electricity", t, 160.0, "kWh")),
        ]
        t += timedelta(hours=1)
    world.client.app.state.carbon_source = RowsSource(rows)
    world.client.app.state.clock = FrozenClock(now)
    r = world.client.get("/api/v1/carbon/summary", headers=world.headers("viewer"), params={"site": SITE})
    assert r.status_code == 200, r.text
    body = r.json()
    month_hours = 31 * 24  # an open month is the whole month of what the source has
    month = {a["area"]: a for a in body["month"]["by_area"]}
    assert body["month"]["period"] == "2025-03" and body["month"]["closed"] is False
    assert month["formation"]["scope2_location_kg"] == pytest.approx(month_hours * 100 * 0.5827)
    assert month["drying"]["scope2_market_kg"] == pytest.approx(month_hours * 50 * 0.6096)
    assert month["formation"]["name"] == "化成" and month["formation"]["scope1_kg"] == 0
    assert body["month"]["totals"]["total_location_kg"] == pytest.approx(month_hours * 160 * 0.5827)
    # today is the site's calendar day, 16:00 UTC on the 14th to 16:00 UTC on the 15th (the source holds all of it)
    today = {a["area"]: a for a in body["today"]["by_area"]}
    assert body["today"]["start"] == "2025-03-14T16:00:00+00:00" and body["today"]["end"] == "2025-03-15T16:00:00+00:00"
    assert today["formation"]["scope2_location_kg"] == pytest.approx(24 * 100 * 0.5827)
    assert today["drying"]["scope2_location_kg"] == pytest.approx(24 * 50 * 0.5827)
    hours = body["intensity"]
    assert len(hours) == 24 and hours[0]["hour"] == "2025-03-14T16:00:00+00:00"
    assert {round(h["g_per_kwh"], 6) for h in hours} == {582.7}
    # a caller without carbon.read: 403
    assert (
        world.client.get(
            "/api/v1/carbon/summary", headers=world.headers("regulator"), params={"site": SITE}
        ).status_code
        == 403
    )
