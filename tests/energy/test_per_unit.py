"""Energy per unit of output per process area and per device, compared across peers of the same kind, against
figures computed by hand from the counters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.db import execute
from core.plant import PlantConfig, apply_plant
from energy import intervals, production
from energy.per_unit import per_unit
from energy.readings import store_counter_readings
from energy.tariffs import TariffSpec, save_tariff
from tests.energy.world import T0
from tests.support import unique_code

TZ = ZoneInfo("Asia/Shanghai")
# per formation cabinet: kWh per minute and cells per minute (form-02's output counter resets to 0 at minute 1500)
LINES = {"form-01": (2.0, 10.0), "form-02": (3.0, 10.0)}


def _cabinet(code: str) -> dict:
    points = [
        {"key": "energy_kwh", "name": "电能", "quantity": "energy", "nominal": 300.0},
        {"key": "output_cells", "name": "电芯数", "quantity": "output", "nominal": None},
    ]
    return {"code": code, "name": f"化成柜 {code}", "kind": "formation_cabinet", "interval_s": 60, "points": points}


def _plant(site: str) -> PlantConfig:
    areas = [
        {
            "code": f"formation-{n}",
            "name": f"化成 {n} 线",
            "process": "formation",
            "devices": [_cabinet(f"form-0{n}")],
            "production": [f"form-0{n}/output_cells"],
        }
        for n in (1, 2)
    ]
    meters = [
        {
            "code": f"e-f{n}",
            "name": f"化成 {n} 线用电",
            "medium": "electricity",
            "point": f"form-0{n}/energy_kwh",
            "area": f"formation-{n}",
        }
        for n in (1, 2)
    ]
    return PlantConfig.model_validate(
        {"sites": [{"code": site, "name": "单耗测试厂", "timezone": "Asia/Shanghai", "areas": areas, "meters": meters}]}
    )


def _point(conn, site: str, device: str, key: str) -> int:
    return execute(
        conn,
        "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id JOIN site s ON s.id = d.site_id "
        "WHERE s.code = %s AND d.code = %s AND p.key = %s",
        (site, device, key),
    ).fetchone()[0]


def test_energy_per_unit_per_process_and_device_with_peer_comparison(conn) -> None:
    site = unique_code("pu")
    apply_plant(conn=conn, plant=_plant(site), source="test")
    site_id = conn.execute("SELECT id FROM site WHERE code = %s", (site,)).fetchone()[0]
    save_tariff(
        conn=conn,
        site_id=site_id,
        actor="test",
        spec=TariffSpec(
            code="flat", name="平价", medium="electricity", valid_from=date(2026, 1, 1), prices={"flat": 0.5}
        ),
    )
    minutes = range(0, 48 * 60 + 1, 5)
    rows = []
    for device, (kwh, cells) in LINES.items():
        energy, output = _point(conn, site, device, "energy_kwh"), _point(conn, site, device, "output_cells")
        rows += [(T0 + timedelta(minutes=m), energy, 500.0 + kwh * m) for m in minutes]
        # form-02's output counter is reset at minute 1500 (inside the day): the counted output must not drop
        reset = 1500 if device == "form-02" else None
        rows += [
            (T0 + timedelta(minutes=m), output, cells * (m - reset if reset is not None and m >= reset else m))
            for m in minutes
        ]
    store_counter_readings(conn, rows)
    now = T0 + timedelta(hours=48, minutes=3)
    intervals.refresh(conn, now=now, site=site)
    production.refresh_production(conn, now=now, site=site)

    # the local day 2026-03-03 is minutes 960..2400 after T0 (T0 is 08:00 local)
    got = per_unit(conn, site=site, start=datetime(2026, 3, 3, 9, tzinfo=TZ), end=datetime(2026, 3, 3, 17, tzinfo=TZ))
    assert got["start"] == datetime(2026, 3, 3, tzinfo=TZ).astimezone(UTC).isoformat()
    # by hand: 1440 minutes x 10 cells = 14,400 cells on each line; form-02's counter shows 0 at the reset, so
    # the 5 minutes before it count what it shows since the reset, 0: 14,400 - 10 x 5 = 14,350
    devices = {d["device"]: d for d in got["devices"]}
    assert devices["form-01"]["quantity"] == pytest.approx(2.0 * 1440)
    assert devices["form-01"]["output"] == pytest.approx(14_400)
    assert devices["form-01"]["per_unit"] == pytest.approx(0.2)
    assert devices["form-01"]["cost_per_unit"] == pytest.approx(0.1)
    assert devices["form-01"]["kgce_per_unit"] == pytest.approx(0.2 * 0.1229)
    out2 = 14_350.0
    assert devices["form-02"]["output"] == pytest.approx(out2)
    assert devices["form-02"]["per_unit"] == pytest.approx(3.0 * 1440 / out2)
    assert [devices[d]["rank"] for d in ("form-01", "form-02")] == [1, 2]
    assert devices["form-01"]["peers"] == 2
    median = (0.2 + 3.0 * 1440 / out2) / 2
    assert devices["form-01"]["group_median"] == pytest.approx(median)
    assert devices["form-01"]["vs_median_pct"] == pytest.approx(100 * (0.2 - median) / median)
    assert devices["form-02"]["vs_median_pct"] > 0

    processes = {p["area"]: p for p in got["processes"]}
    assert processes["formation-1"]["output"] == pytest.approx(14_400)
    assert processes["formation-1"]["per_unit"] == pytest.approx(0.2)
    assert processes["formation-2"]["quantity"] == pytest.approx(3.0 * 1440)
    assert processes["formation-2"]["output"] == pytest.approx(out2)
    assert processes["formation-1"]["peers"] == 2 and processes["formation-1"]["rank"] == 1
