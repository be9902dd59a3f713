"""Hazardous-waste records in the API test world (site s1 of tests/api/conftest.py): a catalogue, a stored
container with its ledger entries, and a draft manifest; helpers that make fresh objects for write routes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import psycopg

from hazwaste import ledger, manifests
from hazwaste.catalogue import HazwasteSection, apply_section
from tests.api.conftest import SITE

_SEQ = itertools.count(1)
_NUMBERS = itertools.count(int(datetime.now(UTC).timestamp() * 1000) % 10**9 * 10)
SECTION = {
    "hazwaste": [
        {
            "site": SITE,
            "producer_name": "一厂",
            "waste_types": [
                {"code": "carbon", "name": "废活性炭", "waste_code": "900-039-49"},
                {"code": "electrolyte", "name": "废电解液", "waste_code": "900-404-06", "form": "liquid"},
            ],
            "facilities": [{"code": "WH-1", "name": "危废库", "kind": "warehouse", "capacity_kg": 5000}],
        }
    ]
}
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


def _site_and_type(conn: psycopg.Connection) -> tuple[int, int]:
    return conn.execute(
        "SELECT s.id, w.id FROM site s JOIN hw_waste_type w ON w.site_id = s.id "
        "WHERE s.code = %s AND w.code = 'carbon'",
        (SITE,),
    ).fetchone()


def container(url: str, *, stored: bool = False) -> int:
    """A new carbon container of s1 (generated and stored when ``stored``)."""
    with psycopg.connect(url) as conn:
        site_id, type_id = _site_and_type(conn)
        cid = ledger.create_container(
            conn=conn,
            site_id=site_id,
            code=f"HW-C-{next(_SEQ)}",
            waste_type_id=type_id,
            container_type="bag",
            volume_l=100,
        )
        if stored:
            ledger.record(
                conn=conn,
                container_id=cid,
                stage="generation",
                at=T0,
                quantity_kg=40,
                handler="张三",
                recorded_by="test",
            )
            ledger.record(
                conn=conn,
                container_id=cid,
                stage="storage_in",
                at=T0,
                handler="张三",
                facility="WH-1",
                recorded_by="test",
            )
    return cid


def manifest(url: str, container_id: int) -> int:
    """A new draft manifest of s1 carrying ``container_id``."""
    with psycopg.connect(url) as conn:
        site_id, type_id = _site_and_type(conn)
        return manifests.create(
            conn=conn,
            site_id=site_id,
            waste_type_id=type_id,
            trip=f"trip-{next(_SEQ)}",
            carrier_name="c",
            vehicle_plate="苏E1",
            carrier_permit="p",
            receiver_name="r",
            receiver_licence="L",
            receiver_scope=["HW49"],
            method="disposal",
            container_ids=[container_id],
            created_by="test",
            at=T0,
        )


def delivered(url: str, kg: float = 40.0) -> str:
    """A new manifest of s1 (one stored container of 40 kg) submitted, shipped and delivered; its number."""
    cid = container(url, stored=True)
    mid = manifest(url, cid)
    number = f"2026{next(_NUMBERS):010d}"
    with psycopg.connect(url) as conn:
        ledger.record(conn=conn, container_id=cid, stage="storage_out", at=T0, handler="张三", recorded_by="test")
        for event, extra in (("submit", {"number": number}), ("depart", {}), ("deliver", {})):
            manifests.apply_event(conn=conn, manifest_id=mid, event=event, at=T0, actor="test", **extra)
    return number


def receipts_csv(number: str, kg: float, licence: str = "L", day: str = "2026-01-06") -> bytes:
    """A receiver's confirmation file of one manifest."""
    return f"联单编号,接收量,计量单位,接收日期,经营许可证编号\n{number},{kg},kg,{day},{licence}\n".encode()


def seed(url: str) -> dict[str, int]:
    """Catalogue, one stored container (with its first entry) and one draft manifest; their ids."""
    with psycopg.connect(url) as conn:
        apply_section(conn=conn, section=HazwasteSection.model_validate(SECTION))
    cid = container(url, stored=True)
    with psycopg.connect(url) as conn:
        entry = conn.execute("SELECT min(id) FROM hw_ledger WHERE container_id = %s", (cid,)).fetchone()[0]
    return {"hw_container": cid, "hw_entry": entry, "hw_manifest": manifest(url, cid)}


def period() -> str:
    """A declaration period not filed yet."""
    n = next(_SEQ)
    return f"{2000 + n // 12}-{n % 12 + 1:02d}"
