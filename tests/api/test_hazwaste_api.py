"""The hazardous-waste API end to end: scan flow (container, steps, history), label PDF with a readable QR code,
incompatible storage refused, manifest with licence scope, exports in XLSX and CSV, regulators read only."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

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
