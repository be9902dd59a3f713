"""The hazardous-waste API end to end: scan flow (container, steps, history), label PDF with a readable QR code,
incompatible storage refused, manifest with licence scope, exports in XLSX and CSV, regulators read only
and see the site-level (area-less) hazardous-waste alarms."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from alerts import service
from core.scope import CodeScope
from hazwaste import compliance as hw_compliance
from tests.api import hazwaste_world
from tests.api.conftest import SITE, World

pytestmark = pytest.mark.db
HW = "/api/v1/hazwaste"


def test_scan_flow_label_and_export(world: World, tmp_path: Path) -> None:
    hazwaste_world.seed(world.url)
    op = world.headers("operator")
    r = world.client.post(
        f"{HW}/containers",
        headers=op,
        json={"site": SITE, "code": "C-API-1", "waste_type": "electrolyte", "container_type": "drum", "volume_l": 200},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    steps = [
        {"stage": "generation", "at": "2026-01-10T09:00:00+08:00", "quantity_kg": 180, "handler": "张三"},
        {"stage": "storage_in", "at": "2026-01-10T10:00:00+08:00", "handler": "李四", "facility": "WH-1"},
    ]
    codes = []
    for step in steps:
        r = world.client.post(f"{HW}/containers/{cid}/entries", headers=op, json=step)
        assert r.status_code == 201, r.text
        codes.append(r.json()["batch_code"])
    assert codes == ["HWCS20260110001", "HWRK20260110001"]
    r = world.client.post(
        f"{HW}/containers/{cid}/entries", headers=op, json={"stage": "generation", "quantity_kg": 1, "handler": "x"}
    )
    assert r.status_code == 409 and "next may be: storage_out" in r.json()["detail"]
    body = world.client.get(f"{HW}/containers/{cid}", headers=world.headers("regulator")).json()
    assert [h["stage"] for h in body["history"]] == ["generation", "storage_in"]
    assert body["url"].endswith(f"/app/#/waste/containers/{cid}")

    r = world.client.get(f"{HW}/containers/{cid}/label.pdf", headers=world.headers("viewer"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    (tmp_path / "l.pdf").write_bytes(r.content)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-singlefile", str(tmp_path / "l.pdf"), str(tmp_path / "l")], check=True
    )
    (code,) = zxingcpp.read_barcodes(Image.open(tmp_path / "l.png"))
    assert code.text == f"http://testserver/app/#/waste/containers/{cid}"

    r = world.client.get(
        f"{HW}/ledger/export", headers=world.headers("regulator"), params={"site": SITE, "period": "2026-01"}
    )
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    assert "HWCS20260110001" in [row[0] for row in wb["B.1 产生环节"].values]
    r = world.client.get(
        f"{HW}/ledger/export",
        headers=world.headers("ehs_manager"),
        params={"site": SITE, "period": "2026-01", "format": "csv", "table": "B.2"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert "HWRK20260110001" in r.content.decode("utf-8-sig")
    figures = world.client.get(f"{HW}/declaration", headers=op, params={"site": SITE, "period": "2026-01"}).json()
    electrolyte = next(i for i in figures["items"] if i["waste_code"] == "900-404-06")
    assert (electrolyte["generated_kg"], electrolyte["closing_kg"]) == (180, 180)
    # regulators never write
    assert (
        world.client.post(
            f"{HW}/containers/{cid}/entries",
            headers=world.headers("regulator"),
            json={"stage": "storage_out", "handler": "x"},
        ).status_code
        == 403
    )


def test_incompatible_storage_and_licence_scope_are_refused(world: World) -> None:
    ids = hazwaste_world.seed(world.url)
    m = world.headers("ehs_manager")
    r = world.client.post(
        f"{HW}/waste-types",
        headers=m,
        json={"site": SITE, "code": "acid", "name": "废酸", "waste_code": "900-349-34", "incompatible_with": []},
    )
    assert r.status_code == 201 and r.json()["category"] == "HW34" and r.json()["hazards"] == ["C", "T"]
    assert (
        world.client.post(
            f"{HW}/waste-types", headers=m, json={"site": SITE, "code": "bad", "name": "x", "waste_code": "900-123-49"}
        ).status_code
        == 422
    )
    world.client.post(
        f"{HW}/waste-types",
        headers=m,
        json={
            "site": SITE,
            "code": "carbon",
            "name": "废活性炭",
            "waste_code": "900-039-49",
            "incompatible_with": ["acid"],
        },
    )
    r = world.client.post(
        f"{HW}/containers",
        headers=m,
        json={"site": SITE, "code": "ACID-1", "waste_type": "acid", "container_type": "drum", "volume_l": 50},
    )
    cid = r.json()["id"]
    world.client.post(
        f"{HW}/containers/{cid}/entries", headers=m, json={"stage": "generation", "quantity_kg": 20, "handler": "a"}
    )
    r = world.client.post(
        f"{HW}/containers/{cid}/entries", headers=m, json={"stage": "storage_in", "handler": "a", "facility": "WH-1"}
    )
    assert r.status_code == 409 and "incompatible" in r.json()["detail"]
    r = world.client.post(
        f"{HW}/manifests",
        headers=m,
        json={
            "site": SITE,
            "waste_type": "carbon",
            "trip": "T-1",
            "carrier_name": "c",
            "vehicle_plate": "苏E1",
            "carrier_permit": "p",
            "receiver_name": "r",
            "receiver_licence": "L",
            "receiver_scope": ["HW06"],
            "method": "disposal",
            "container_ids": [ids["hw_container"]],
        },
    )
    assert r.status_code == 422 and "does not cover 900-039-49" in r.json()["detail"]
    r = world.client.post(
        f"{HW}/manifests/{ids['hw_manifest']}/events", headers=m, json={"event": "submit", "number": "123"}
    )
    assert r.status_code == 422
    r = world.client.post(f"{HW}/manifests/{ids['hw_manifest']}/events", headers=m, json={"event": "deliver"})
    assert r.status_code == 409 and "cannot take 'deliver'" in r.json()["detail"]
    r = world.client.post(
        f"{HW}/manifests/{ids['hw_manifest']}/events",
        headers=m,
        json={"event": "submit", "number": "20263205000777", "at": "2026-06-01T10:00:00+08:00"},
    )
    assert r.status_code == 200 and r.json()["state"] == "submitted"
    r = world.client.get(f"{HW}/manifests/{ids['hw_manifest']}/manifest.pdf", headers=world.headers("regulator"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout.decode()
    for expected in ("危险废物转移联单", "20263205000777", "已提交", "HW49", "一厂"):
        assert expected in text, expected


def test_regulators_see_the_site_level_hazwaste_alarms_read_only(world: World) -> None:
    """Declaration (and manifest) alarms have no area: a regulator of the site sees them through the API, acts on
    none of them; a user of another site sees none (core.scope, site-level records)."""
    hazwaste_world.seed(world.url)
    now = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # February's monthly declaration was due on 15 March
    with psycopg.connect(world.url) as conn:
        findings = hw_compliance.evaluate(conn=conn, now=now, dwell=False)
        service.apply_findings(conn=conn, findings=findings, now=now)
        conn.commit()
        (alarm_id,) = conn.execute(
            "SELECT id FROM alarm WHERE rule = 'hazwaste.declaration.monthly' AND site = %s AND closed_at IS NULL",
            (SITE,),
        ).fetchone()
        assert conn.execute("SELECT area FROM alarm WHERE id = %s", (alarm_id,)).fetchone()[0] is None
    for who in ("regulator", "operator"):
        listed = world.client.get("/api/v1/alarms", headers=world.headers(who), params={"site": SITE}).json()
        assert alarm_id in [a["id"] for a in listed], who
        assert world.client.get(f"/api/v1/alarms/{alarm_id}", headers=world.headers(who)).status_code == 200
    assert world.client.post(f"/api/v1/alarms/{alarm_id}/ack", headers=world.headers("regulator")).status_code == 403
    assert world.client.get(f"/api/v1/alarms/{alarm_id}", headers=world.headers("other_site")).status_code == 404
    assert alarm_id not in [
        a["id"] for a in world.client.get("/api/v1/alarms", headers=world.headers("other_site")).json()
    ]
    # a process-limited caller still sees no area-less record of another kind: the scope's default is strict
    assert not CodeScope([SITE], [f"{SITE}/wastewater"]).sees(SITE, None)
    assert CodeScope([SITE], [f"{SITE}/wastewater"]).sees(SITE, None, site_level=True)
    assert not CodeScope(["s2"], ["s2/wastewater"]).sees(SITE, None, site_level=True)


def test_receipts_import_and_manifest_export(world: World) -> None:
    hazwaste_world.seed(world.url)
    op = world.headers("operator")
    number = hazwaste_world.delivered(world.url)
    url = f"{HW}/manifests/receipts"
    short = hazwaste_world.receipts_csv(number, 30.0)
    bad = short + f"{number[:-1]}x,1,kg,2026-01-06,L\n".encode()
    r = world.client.post(url, headers=op, params={"site": SITE}, files={"file": ("r.csv", bad)})
    assert r.status_code == 422, r.text
    problems = [e["message"] for e in r.json()["errors"]]
    assert any(p.startswith("line 3, column 联单编号") for p in problems), problems
    r = world.client.get(f"{HW}/manifests", headers=op, params={"site": SITE, "state": "delivered"})
    assert number in [m["number"] for m in r.json()]  # nothing applied
    r = world.client.post(
        url, headers=world.headers("regulator"), params={"site": SITE}, files={"file": ("r.csv", short)}
    )
    assert r.status_code == 403
    r = world.client.post(url, headers=op, params={"site": SITE}, files={"file": ("r.csv", short)})
    assert r.status_code == 200, r.text
    assert r.json()["manifests"][0] == {
        "line": 2,
        "number": number,
        "state": "discrepancy",
        "received_kg": 30.0,
    }
    r = world.client.get(
        f"{HW}/manifests/export",
        headers=world.headers("regulator"),
        params={"site": SITE, "period": "2026-01", "format": "csv"},
    )
    assert r.status_code == 200 and r.text.lstrip("\ufeff").startswith("联单编号,移出人,危险废物名称")
    line = next(x for x in r.text.splitlines() if x.startswith(number))
    assert "数量差异" in line and ",30.0," in line
