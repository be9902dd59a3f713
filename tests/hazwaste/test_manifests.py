"""Transfer manifests: the state table (every pair), licence scope, one per trip and type, quantities shipped
against received, the paper fallback, and every deadline at its boundary in working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazwaste import ledger, manifests
from hazwaste.catalogue import HazwasteError
from hazwaste.manifests import EVENTS, STATES, TRANSITIONS, next_state
from hazwaste.workdays import WorkCalendar
from tests.hazwaste.world import seed
from tests.support import unique_code

SH = ZoneInfo("Asia/Shanghai")
CARRIER = {
    "carrier_name": "某危货运输公司",
    "vehicle_plate": "苏E12345",
    "carrier_permit": "苏交运管许可苏字320500000001号",
}
RECEIVER = {"receiver_name": "某环保科技公司", "receiver_licence": "JS0500OOD001-1"}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_state_table_answers_every_pair(state: str, event: str) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) == TRANSITIONS[(state, event)]
        assert TRANSITIONS[(state, event)] in STATES
    else:
        with pytest.raises(HazwasteError) as exc:
            next_state(state, event)
        assert exc.value.status == 409


def test_every_state_is_reachable_and_every_path_ends() -> None:
    reach, todo = {"draft"}, ["draft"]
    while todo:
        s = todo.pop()
        for (a, _), b in TRANSITIONS.items():
            if a == s and b not in reach:
                reach.add(b)
                todo.append(b)
    assert reach == set(STATES)
    finished = {s for s in STATES if not any(a == s for a, _ in TRANSITIONS)}
    assert finished == {"closed", "cancelled"}


def test_number_is_fourteen_digits_starting_with_the_year() -> None:
    manifests.check_number("20263205000123", year=2026)
    for bad in ("2026320500012", "2026320500012X", "20253205000123"):
        with pytest.raises(HazwasteError):
            manifests.check_number(bad, year=2026)


# --- working days -----------------------------------------------------------------------------------------


def test_receipt_deadline_is_five_working_days_after_delivery() -> None:
    cal = WorkCalendar()
    friday = datetime(2026, 1, 9, 15, 0, tzinfo=SH)
    assert cal.due(friday, 5, "Asia/Shanghai") == datetime(2026, 1, 17, tzinfo=SH)  # Mon 12 .. Fri 16
    saturday = datetime(2026, 1, 10, 9, 0, tzinfo=SH)
    assert cal.due(saturday, 5, "Asia/Shanghai") == datetime(2026, 1, 17, tzinfo=SH)
    with_holiday = WorkCalendar.of(holidays=[date(2026, 1, 14)])
    assert with_holiday.due(friday, 5, "Asia/Shanghai") == datetime(2026, 1, 20, tzinfo=SH)
    # an adjusted working Saturday (调休) counts
    adjusted = WorkCalendar.of(holidays=[date(2026, 1, 14)], extra_workdays=[date(2026, 1, 17)])
    assert adjusted.due(friday, 5, "Asia/Shanghai") == datetime(2026, 1, 18, tzinfo=SH)
    # the local day decides: 16:30 UTC on Friday is already Saturday in Shanghai
    assert cal.due(datetime(2026, 1, 9, 16, 30, tzinfo=UTC), 5, "Asia/Shanghai") == datetime(2026, 1, 17, tzinfo=SH)


def test_backfill_deadline_is_ten_working_days_after_the_transfer() -> None:
    monday = datetime(2026, 2, 2, 10, 0, tzinfo=SH)
    assert WorkCalendar().due(monday, 10, "Asia/Shanghai") == datetime(2026, 2, 17, tzinfo=SH)
    spring = WorkCalendar.of(holidays=[date(2026, 2, d) for d in range(16, 21)])
    assert spring.due(monday, 10, "Asia/Shanghai") == datetime(2026, 2, 24, tzinfo=SH)


# --- against the database ---------------------------------------------------------------------------------


def _stored(conn, w, kind: str, kg: float, n: int = 2) -> list[int]:
    ids = []
    t = datetime(2026, 1, 5, 9, 0, tzinfo=SH)
    for _ in range(n):
        cid = ledger.create_container(
            conn=conn,
            site_id=w.site_id,
            code=unique_code("C-"),
            waste_type_id=w.types[kind],
            container_type="drum",
            volume_l=200,
        )
        ledger.record(
            conn=conn, container_id=cid, stage="generation", at=t, quantity_kg=kg, handler="a", recorded_by="t"
        )
        ledger.record(
            conn=conn,
            container_id=cid,
            stage="storage_in",
            at=t + timedelta(hours=1),
            handler="a",
            facility="WH-2",
            recorded_by="t",
        )
        ledger.record(
            conn=conn, container_id=cid, stage="storage_out", at=t + timedelta(days=1), handler="a", recorded_by="t"
        )
        ids.append(cid)
    return ids


def _draft(conn, w, containers, *, kind="electrolyte", scope=("HW06",), trip=None) -> int:
    return manifests.create(
        conn=conn,
        site_id=w.site_id,
        waste_type_id=w.types[kind],
        trip=trip or unique_code("T"),
        receiver_scope=list(scope),
        method="disposal",
        container_ids=containers,
        created_by="u",
        at=datetime(2026, 1, 6, 8, 0, tzinfo=SH),
        **CARRIER,
        **RECEIVER,
    )


@pytest.mark.db
def test_electronic_path_ships_in_the_ledger_and_closes(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    containers = _stored(conn, w, "electrolyte", 100.0)
    mid = _draft(conn, w, containers)
    t = datetime(2026, 1, 6, 9, 0, tzinfo=SH)
    with pytest.raises(HazwasteError, match="14 digits"):
        manifests.apply_event(conn=conn, manifest_id=mid, event="submit", at=t, actor="u", number="123")
    manifests.apply_event(conn=conn, manifest_id=mid, event="submit", at=t, actor="u", number="20263205000123")
    m = manifests.apply_event(conn=conn, manifest_id=mid, event="depart", at=t + timedelta(hours=1), actor="driver")
    assert (m["state"], m["shipped_kg"]) == ("in_transit", 200.0)
    for cid in containers:
        last = ledger.history(conn=conn, container_id=cid)[-1]
        assert (last["stage"], last["receiver_licence"]) == ("sent_disposal", RECEIVER["receiver_licence"])
        assert last["batch_code"].startswith("HWWWCZ20260106")
    manifests.apply_event(conn=conn, manifest_id=mid, event="deliver", at=t + timedelta(hours=5), actor="r")
    m = manifests.apply_event(
        conn=conn, manifest_id=mid, event="receive", at=t + timedelta(days=1), actor="r", received_kg=199.0
    )  # 0.5 %: within the scales' tolerance
    assert (m["state"], m["discrepancy"]) == ("received", False)
    manifests.apply_event(conn=conn, manifest_id=mid, event="dispose", at=t + timedelta(days=9), actor="r")
    m = manifests.apply_event(conn=conn, manifest_id=mid, event="close", at=t + timedelta(days=10), actor="u")
    assert m["state"] == "closed" and m["number"] == "20263205000123"
    assert [e["event"] for e in m["events"]] == ["submit", "depart", "deliver", "receive", "dispose", "close"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute("DELETE FROM hw_manifest_event WHERE manifest_id = %s", (mid,))


@pytest.mark.db
def test_short_delivery_is_flagged_as_a_discrepancy(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    mid = _draft(conn, w, _stored(conn, w, "electrolyte", 100.0))
    t = datetime(2026, 1, 6, 9, 0, tzinfo=SH)
    for event, extra in (("submit", {"number": "20263205000124"}), ("depart", {}), ("deliver", {})):
        manifests.apply_event(conn=conn, manifest_id=mid, event=event, at=t, actor="u", **extra)
    m = manifests.apply_event(conn=conn, manifest_id=mid, event="receive", at=t, actor="r", received_kg=180.0)
    assert (m["state"], m["discrepancy"], m["shipped_kg"], m["received_kg"]) == ("discrepancy", True, 200.0, 180.0)
    with pytest.raises(HazwasteError, match="cannot take 'dispose'"):
        manifests.apply_event(conn=conn, manifest_id=mid, event="dispose", at=t, actor="r")
    assert (
        manifests.apply_event(conn=conn, manifest_id=mid, event="resolve", at=t, actor="u", note="已报告生态环境局")[
            "state"
        ]
        == "received"
    )


@pytest.mark.db
def test_licence_scope_and_one_manifest_per_trip_and_type(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    electrolyte = _stored(conn, w, "electrolyte", 50.0, n=1)
    carbon = _stored(conn, w, "carbon", 50.0, n=1)
    with pytest.raises(HazwasteError, match="does not cover 900-404-06"):
        _draft(conn, w, electrolyte, scope=("HW49", "900-402-06"))
    _draft(conn, w, electrolyte, scope=("900-404-06",), trip="T-1")
    with pytest.raises(HazwasteError, match="already has a manifest"):
        _draft(conn, w, electrolyte, trip="T-1")
    with pytest.raises(HazwasteError, match="waste type"):
        _draft(conn, w, carbon, trip="T-2")  # a carbon drum on the electrolyte manifest
    assert _draft(conn, w, carbon, kind="carbon", scope=("HW49",), trip="T-1") > 0  # same trip, other type


@pytest.mark.db
def test_overdue_receipt_and_backfill_at_their_boundaries(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    cal = WorkCalendar()
    delivered = _draft(conn, w, _stored(conn, w, "electrolyte", 10.0, n=1))
    friday = datetime(2026, 1, 9, 15, 0, tzinfo=SH)
    for event in ("submit", "depart", "deliver"):
        manifests.apply_event(
            conn=conn,
            manifest_id=delivered,
            event=event,
            at=friday,
            actor="u",
            number="20263205000125" if event == "submit" else None,
        )
    paper = _draft(conn, w, _stored(conn, w, "carbon", 10.0, n=1), kind="carbon", scope=("HW49",))
    monday = datetime(2026, 2, 2, 10, 0, tzinfo=SH)
    manifests.apply_event(conn=conn, manifest_id=paper, event="paper", at=monday, actor="u")

    def late(now):
        return {(o["manifest"]["id"], o["deadline"]) for o in manifests.overdue(conn=conn, now=now, calendar=cal)}

    assert late(datetime(2026, 1, 16, 23, 59, 59, tzinfo=SH)) == set()
    assert late(datetime(2026, 1, 17, 0, 0, tzinfo=SH)) == {(delivered, "receipt")}
    assert late(datetime(2026, 2, 16, 23, 59, tzinfo=SH)) == {(delivered, "receipt")}
    assert late(datetime(2026, 2, 17, 0, 0, tzinfo=SH)) == {(delivered, "receipt"), (paper, "backfill")}
    manifests.apply_event(
        conn=conn,
        manifest_id=delivered,
        event="receive",
        at=datetime(2026, 2, 17, tzinfo=SH),
        actor="r",
        received_kg=10.0,
    )
    m = manifests.apply_event(
        conn=conn,
        manifest_id=paper,
        event="backfill",
        at=datetime(2026, 2, 17, tzinfo=SH),
        actor="u",
        number="20263205000126",
        delivered_at=datetime(2026, 2, 3, tzinfo=SH),
    )
    assert (m["state"], m["paper"]) == ("delivered", True)
    # back-filled: now the receiver's 5 working days run from the delivery it recorded
    assert late(datetime(2026, 2, 18, tzinfo=SH)) == {(paper, "receipt")}
