"""The HJ 1259-2022 ledger against the real database: stages, fields, batch codes, append-only, corrections,
incompatible storage, weights from a scale."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hazwaste import ledger
from hazwaste.catalogue import HazwasteError, WasteTypeSpec, list_facilities
from tests.hazwaste.world import seed
from tests.support import unique_code

pytestmark = pytest.mark.db
T0 = datetime(2021, 10, 30, 17, 0, tzinfo=UTC)  # 2021-10-31 01:00 in Asia/Shanghai


def _container(conn, w, kind="electrolyte", code=None, volume=200.0) -> int:
    return ledger.create_container(
        conn=conn,
        site_id=w.site_id,
        code=code or unique_code("C-"),
        waste_type_id=w.types[kind],
        container_type="drum",
        volume_l=volume,
    )


def test_every_stage_keeps_its_fields_and_batch_code(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    cid = _container(conn, w)
    gen = ledger.record(
        conn=conn,
        container_id=cid,
        stage="generation",
        at=T0,
        quantity_kg=180.5,
        handler="张三",
        facility="GEN-1",
        destination="贮存",
        recorded_by="user:zhang",
    )
    into = ledger.record(
        conn=conn,
        container_id=cid,
        stage="storage_in",
        at=T0 + timedelta(hours=2),
        handler="李四",
        handler2="王五",
        facility="WH-1",
        recorded_by="user:li",
    )
    out = ledger.record(
        conn=conn,
        container_id=cid,
        stage="storage_out",
        at=T0 + timedelta(days=30),
        handler="王五",
        destination="委外处置",
        recorded_by="user:wang",
    )
    sent = ledger.record(
        conn=conn,
        container_id=cid,
        stage="sent_disposal",
        at=T0 + timedelta(days=30, hours=1),
        handler="王五",
        method="焚烧 D10",
        receiver_type="持证单位",
        receiver_name="某环保公司",
        receiver_licence="JS0500OOD001-1",
        recorded_by="user:wang",
    )
    # the site's local date, a three-digit sequence per prefix and day (standards.md 4.2: HWCS20211031001)
    assert gen["batch_code"] == "HWCS20211031001"
    assert into["batch_code"] == "HWRK20211031001"
    assert out["batch_code"] == "HWCK20211130001"
    assert sent["batch_code"] == "HWWWCZ20211130001"
    # each stage names the batch it came from, and keeps the weight
    assert (into["source_batch"], out["source_batch"], sent["source_batch"]) == (
        gen["batch_code"],
        into["batch_code"],
        out["batch_code"],
    )
    assert [r["quantity_kg"] for r in (gen, into, out, sent)] == [180.5] * 4
    assert into["handler2"] == "王五" and sent["receiver_licence"] == "JS0500OOD001-1"
    assert [r["stage"] for r in ledger.history(conn=conn, container_id=cid)] == [
        "generation",
        "storage_in",
        "storage_out",
        "sent_disposal",
    ]
    c = ledger.get_container(conn=conn, container_id=cid)
    assert c["stage"] == "sent_disposal" and c["facility_id"] is None and c["first_stored_at"] == into["at"]


def test_batch_sequence_counts_per_prefix_and_day(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    codes = [
        ledger.record(
            conn=conn,
            container_id=_container(conn, w),
            stage="generation",
            at=T0 + timedelta(minutes=i),
            quantity_kg=10,
            handler="张三",
            recorded_by="t",
        )["batch_code"]
        for i in range(3)
    ]
    assert codes == ["HWCS20211031001", "HWCS20211031002", "HWCS20211031003"]
    assert all(re.fullmatch(r"HWCS\d{8}\d{3}", c) for c in codes)
    next_day = ledger.record(
        conn=conn,
        container_id=_container(conn, w),
        stage="generation",
        at=T0 + timedelta(days=1),
        quantity_kg=1,
        handler="张三",
        recorded_by="t",
    )
    assert next_day["batch_code"] == "HWCS20211101001"


def test_ledger_rows_cannot_be_changed_or_deleted(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    row = ledger.record(
        conn=conn,
        container_id=_container(conn, w),
        stage="generation",
        at=T0,
        quantity_kg=5,
        handler="张三",
        recorded_by="t",
    )
    for sql in ("UPDATE hw_ledger SET quantity_kg = 1 WHERE id = %s", "DELETE FROM hw_ledger WHERE id = %s"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), conn.transaction():
            conn.execute(sql, (row["id"],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("TRUNCATE hw_ledger CASCADE")
    assert conn.execute("SELECT quantity_kg FROM hw_ledger WHERE id = %s", (row["id"],)).fetchone()[0] == 5


def test_a_correction_is_a_new_row_and_the_current_ledger_shows_it(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    cid = _container(conn, w)
    row = ledger.record(
        conn=conn, container_id=cid, stage="generation", at=T0, quantity_kg=50, handler="张三", recorded_by="t"
    )
    fixed = ledger.correct(
        conn=conn, entry_id=row["id"], changes={"quantity_kg": 48.2}, reason="复磅", recorded_by="user:li"
    )
    assert fixed["id"] != row["id"] and fixed["corrects_id"] == row["id"]
    assert fixed["batch_code"] == row["batch_code"]
    assert conn.execute("SELECT quantity_kg FROM hw_ledger WHERE id = %s", (row["id"],)).fetchone()[0] == 50
    (current,) = ledger.history(conn=conn, container_id=cid)
    assert current["quantity_kg"] == 48.2 and current["corrected"] and current["entry_id"] == row["id"]
    assert ledger.get_container(conn=conn, container_id=cid)["weight_kg"] == 48.2
    with pytest.raises(HazwasteError, match="cannot correct stage"):
        ledger.correct(conn=conn, entry_id=row["id"], changes={"stage": "storage_in"}, reason="x", recorded_by="t")
    with pytest.raises(HazwasteError, match="reason"):
        ledger.correct(conn=conn, entry_id=row["id"], changes={"quantity_kg": 1}, reason=" ", recorded_by="t")


def test_incompatible_waste_is_refused_in_the_same_store(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    acid, electrolyte, carbon = (_container(conn, w, k) for k in ("waste-acid", "electrolyte", "carbon"))
    for cid in (acid, electrolyte, carbon):
        ledger.record(
            conn=conn, container_id=cid, stage="generation", at=T0, quantity_kg=20, handler="张三", recorded_by="t"
        )
    ledger.record(
        conn=conn,
        container_id=acid,
        stage="storage_in",
        at=T0 + timedelta(hours=1),
        handler="李四",
        facility="WH-1",
        recorded_by="t",
    )
    with pytest.raises(HazwasteError, match="incompatible"):
        ledger.record(
            conn=conn,
            container_id=electrolyte,
            stage="storage_in",
            at=T0 + timedelta(hours=2),
            handler="李四",
            facility="WH-1",
            recorded_by="t",
        )
    # compatible waste goes into the same store; the incompatible one into the other store
    ledger.record(
        conn=conn,
        container_id=carbon,
        stage="storage_in",
        at=T0 + timedelta(hours=2),
        handler="李四",
        facility="WH-1",
        recorded_by="t",
    )
    ledger.record(
        conn=conn,
        container_id=electrolyte,
        stage="storage_in",
        at=T0 + timedelta(hours=2),
        handler="李四",
        facility="WH-2",
        recorded_by="t",
    )
    fill = {f["code"]: (f["fill_kg"], f["containers"]) for f in list_facilities(conn=conn, site_ids=[w.site_id])}
    assert fill["WH-1"] == (40, 2) and fill["WH-2"] == (20, 1)


def test_out_of_order_stages_and_transfers_without_licence_are_refused(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    cid = _container(conn, w)
    with pytest.raises(HazwasteError, match="next may be: generation"):
        ledger.record(
            conn=conn,
            container_id=cid,
            stage="storage_in",
            at=T0,
            quantity_kg=1,
            handler="a",
            facility="WH-1",
            recorded_by="t",
        )
    ledger.record(conn=conn, container_id=cid, stage="generation", at=T0, quantity_kg=1, handler="a", recorded_by="t")
    with pytest.raises(HazwasteError, match="storage facility"):
        ledger.record(
            conn=conn, container_id=cid, stage="storage_in", at=T0, handler="a", facility="GEN-1", recorded_by="t"
        )
    with pytest.raises(HazwasteError, match="licence"):
        ledger.record(
            conn=conn, container_id=cid, stage="sent_use", at=T0, handler="a", receiver_name="x", recorded_by="t"
        )
    with pytest.raises(HazwasteError, match="before the container's last step"):
        ledger.record(
            conn=conn,
            container_id=cid,
            stage="storage_in",
            at=T0 - timedelta(hours=1),
            handler="a",
            facility="WH-1",
            recorded_by="t",
        )


def test_weight_from_a_scale_point(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    conn.execute(
        "INSERT INTO reading (time, point_id, value) VALUES (%s, %s, 212.4), (%s, %s, 999)",
        (T0 - timedelta(minutes=2), w.scale_point, T0 - timedelta(hours=2), w.scale_point),
    )
    row = ledger.record(
        conn=conn,
        container_id=_container(conn, w),
        stage="generation",
        at=T0,
        scale_point_id=w.scale_point,
        handler="张三",
        recorded_by="t",
    )
    assert (row["quantity_kg"], row["weight_source"], row["scale_point_id"]) == (212.4, "scale", w.scale_point)
    with pytest.raises(HazwasteError, match="no reading"):
        ledger.record(
            conn=conn,
            container_id=_container(conn, w),
            stage="generation",
            at=T0 - timedelta(hours=1),
            scale_point_id=w.scale_point,
            handler="张三",
            recorded_by="t",
        )


def test_catalogue_refuses_codes_outside_the_list() -> None:
    with pytest.raises(ValidationError, match="not in the 2021 list"):
        WasteTypeSpec(code="x", name="x", waste_code="900-123-49")
    spec = WasteTypeSpec(code="x", name="x", waste_code="900-000-49")  # hazardous by testing
    assert spec.hazards == ["T", "C", "I", "R", "In"]
    assert WasteTypeSpec(code="y", name="y", waste_code="900-039-49", edition=2025).list_name.startswith("烟气")


STAGE = st.sampled_from(ledger.STAGES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(STAGE, st.floats(min_value=0, max_value=5000, allow_nan=False)), max_size=6))
def test_any_sequence_of_requests_follows_the_stage_table(conn: psycopg.Connection, steps) -> None:
    """Whatever the phone sends, the ledger holds exactly the accepted steps, each allowed by ``NEXT``."""
    with conn.transaction(force_rollback=True):
        w = seed(conn, unique_code("hw"))
        cid = _container(conn, w, "carbon")
        stage, accepted = None, []
        for i, (wanted, kg) in enumerate(steps):
            kwargs = {"facility": "WH-2"} if wanted == "storage_in" else {}
            if wanted in ledger.SENT:
                kwargs |= {"receiver_name": "某公司", "receiver_licence": "L-1"}
            try:
                with conn.transaction():
                    ledger.record(
                        conn=conn,
                        container_id=cid,
                        stage=wanted,
                        at=T0 + timedelta(days=i),
                        quantity_kg=kg,
                        handler="a",
                        recorded_by="t",
                        **kwargs,
                    )
            except HazwasteError:
                assert wanted not in ledger.NEXT[stage]
                continue
            assert wanted in ledger.NEXT[stage]
            stage = wanted
            accepted.append(wanted)
        assert [r["stage"] for r in ledger.history(conn=conn, container_id=cid)] == accepted
        assert ledger.get_container(conn=conn, container_id=cid)["stage"] == stage
