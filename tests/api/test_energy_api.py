"""The energy API on the test world: offline readings in, ledgers out as JSON/CSV/XLSX, tariffs and production,
bad input answered 422 with the line and field, never a 500."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from energy import intervals
from tests.api.conftest import SITE, World

H = "admin"
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def _csv(rows: list[tuple[str, datetime, float]]) -> bytes:
    return ("meter,time,value\n" + "".join(f"{m},{t.isoformat()},{v}\n" for m, t, v in rows)).encode()


def _import(world: World, body: bytes, name: str = "r.csv", who: str = H, kind: str = "readings"):
    return world.client.post(
        "/api/v1/energy/offline",
        params={"site": SITE, "kind": kind},
        files={"file": (name, body)},
        headers=world.headers(who),
    )


def test_offline_readings_become_a_ledger_in_json_csv_and_xlsx(world: World) -> None:
    rows = [("e-main", T0 + timedelta(minutes=15 * i), 1000.0 + 25.0 * i) for i in range(0, 97)]
    r = _import(world, _csv(rows))
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 97 and r.json()["meters"] == ["e-main"]
    with world.db() as conn, conn.transaction():
        intervals.refresh(conn, now=T0 + timedelta(days=1, minutes=5))
    params = {
        "site": SITE,
        "start": T0.isoformat(),
        "end": (T0 + timedelta(days=1)).isoformat(),
        "by": "meter",
        "bucket": "hour",
    }
    body = world.client.get("/api/v1/energy/ledger", params=params, headers=world.headers(H)).json()
    main = [x for x in body["rows"] if x["key"] == "e-main"]
    assert len(main) == 24 and all(x["quantity"] == 100.0 for x in main)
    assert main[0]["unit"] == "kWh" and main[0]["quality"] == {"measured": 4, "estimated": 0, "missing": 0}
    csv = world.client.get("/api/v1/energy/ledger", params={**params, "format": "csv"}, headers=world.headers(H))
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 25 and lines[1].startswith("e-main,")
    xlsx = world.client.get("/api/v1/energy/ledger", params={**params, "format": "xlsx"}, headers=world.headers(H))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(3, 1).value == "e-main" and sheet.cell(3, 5).value == 100.0
    audit = world.client.get("/api/v1/audit", params={"limit": 50}, headers=world.headers(H)).json()
    assert any(e["action"] == "energy.offline_import" for e in audit["items"])


def test_a_bad_offline_file_is_refused_whole_naming_line_and_field(world: World) -> None:
    body = _csv([("e-main", T0, 1.0)]) + (
        b"nope,2026-03-01T00:15:00+08:00,2\ne-main,yesterday,3\ne-main,2026-03-01T01:00:00,4\n"
    )
    r = _import(world, body)
    assert r.status_code == 422
    problems = [e["message"] for e in r.json()["errors"]]
    assert problems[0].startswith("line 3: meter") and problems[1].startswith("line 4: time")
    assert "offset" in problems[2]
    with world.db() as conn:
        assert conn.execute("SELECT count(*) FROM energy_offline_import").fetchone()[0] == 0
    assert _import(world, b"\x00\xff garbage", name="x.xlsx").status_code == 422
    assert _import(world, b"a,b\n1,2\n").json()["errors"][0]["message"].startswith("line 1: missing column")


def test_tariffs_and_production_round_trip_and_refuse_bad_input(world: World) -> None:
    tariff = {
        "site": SITE,
        "code": "tou",
        "name": "分时",
        "medium": "electricity",
        "valid_from": "2026-01-01",
        "prices": {"peak": 1.0, "flat": 0.7, "valley": 0.4},
        "periods": [
            {"season": "all", "months": list(range(1, 13)), "from": "00:00", "to": "08:00", "band": "valley"},
            {"season": "all", "months": list(range(1, 13)), "from": "08:00", "to": "12:00", "band": "peak"},
        ],
    }
    assert world.client.post("/api/v1/energy/tariffs", json=tariff, headers=world.headers(H)).status_code == 201
    got = world.client.get("/api/v1/energy/tariffs", params={"site": SITE}, headers=world.headers(H)).json()
    assert got[0]["periods"][1]["from"] == "08:00" and got[0]["prices"]["valley"] == 0.4
    bad = {**tariff, "periods": [{**tariff["periods"][0], "to": "09:00"}, tariff["periods"][1]]}
    r = world.client.post("/api/v1/energy/tariffs", json=bad, headers=world.headers(H))
    assert r.status_code == 422 and "overlap" in r.text
    rows = [
        {
            "area": "formation",
            "start": "2026-03-01T00:00:00+08:00",
            "end": "2026-03-02T00:00:00+08:00",
            "quantity": 5000,
            "unit": "cells",
        }
    ]
    assert (
        world.client.post(
            "/api/v1/energy/production", json={"site": SITE, "rows": rows}, headers=world.headers(H)
        ).status_code
        == 201
    )
    window = {"site": SITE, "start": "2026-03-01T00:00:00+08:00", "end": "2026-03-02T00:00:00+08:00"}
    stored = world.client.get("/api/v1/energy/production", params=window, headers=world.headers(H))
    assert stored.status_code == 200
    assert [(p["area"], p["quantity"], p["unit"]) for p in stored.json()] == [("formation", 5000, "cells")]
    r = world.client.post(
        "/api/v1/energy/production",
        json={"site": SITE, "rows": [{**rows[0], "area": "nope"}]},
        headers=world.headers(H),
    )
    assert r.status_code == 422 and "line 1: area" in r.json()["errors"][0]["message"]


def test_ledger_parameters_are_checked(world: World) -> None:
    base = {"site": SITE, "start": "2026-03-02T00:00:00+08:00", "end": "2026-03-01T00:00:00+08:00"}
    assert world.client.get("/api/v1/energy/ledger", params=base, headers=world.headers(H)).status_code == 422
    naive = {**base, "start": "2026-03-01T00:00:00", "end": "2026-03-02T00:00:00"}
    assert world.client.get("/api/v1/energy/ledger", params=naive, headers=world.headers(H)).status_code == 422
    huge = {**base, "start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "bucket": "15min"}
    assert world.client.get("/api/v1/energy/ledger", params=huge, headers=world.headers(H)).status_code == 422
    nosite = {**base, "site": "zz", "end": "2026-03-03T00:00:00+08:00"}
    assert world.client.get("/api/v1/energy/ledger", params=nosite, headers=world.headers(H)).status_code == 404
