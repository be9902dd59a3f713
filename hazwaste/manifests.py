"""Electronic transfer manifests (危险废物转移管理办法, MEE/MPS/MOT Order No. 23, in force 2022-01-01).

One manifest per vehicle trip and waste type (Art. 16, a unique key in the database); its 14-digit number is
YYYY + province (2) + prefecture (2) + a 6-digit serial (Art. 15), given by the national system when the
consignor submits; the receiver's licence scope must cover the waste code; the carrier's vehicle and permit are
recorded (Art. 11). ``TRANSITIONS`` is the state machine (standards.md 4.4's suggested lifecycle):

============================  =====================  ===========================================================
state                         event                  next state
============================  =====================  ===========================================================
draft                         submit                 submitted (number assigned)
draft                         paper                  paper_fallback (the system is down: shipped on paper)
draft / submitted             cancel                 cancelled
submitted                     depart                 in_transit (the containers go out in the ledger)
paper_fallback                backfill               delivered (back-filled within 10 working days)
in_transit                    deliver                delivered
delivered                     receive                received, or discrepancy when the quantities differ
delivered                     reject                 rejected
discrepancy                   resolve                received (the consignor and the EEB were told, Art. 18)
received                      dispose                disposed (the receiver's result fed back)
disposed / rejected           close                  closed
============================  =====================  ===========================================================

Deadlines: the receiver confirms within 5 working days of delivery (Art. 18); a paper manifest is back-filled
within 10 working days of the transfer. Functions take a keyword-only ``conn`` and never commit.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from psycopg.rows import dict_row

from core.db import execute
from hazwaste import codes, ledger
from hazwaste.catalogue import HazwasteError
from hazwaste.workdays import WorkCalendar

TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "submitted",
    ("draft", "paper"): "paper_fallback",
    ("draft", "cancel"): "cancelled",
    ("submitted", "cancel"): "cancelled",
    ("submitted", "depart"): "in_transit",
    ("paper_fallback", "backfill"): "delivered",
    ("in_transit", "deliver"): "delivered",
    ("delivered", "receive"): "received",
    ("delivered", "receive_discrepancy"): "discrepancy",
    ("delivered", "reject"): "rejected",
    ("discrepancy", "resolve"): "received",
    ("received", "dispose"): "disposed",
    ("disposed", "close"): "closed",
    ("rejected", "close"): "closed",
}
STATES = (
    "draft",
    "submitted",
    "paper_fallback",
    "in_transit",
    "delivered",
    "received",
    "discrepancy",
    "rejected",
    "disposed",
    "closed",
    "cancelled",
)
EVENTS = tuple(sorted({event for _, event in TRANSITIONS} - {"receive_discrepancy"}))
RECEIPT_WORKDAYS = 5  # Art. 18
BACKFILL_WORKDAYS = 10  # paper fallback
#: relative difference of received and shipped weight above which a discrepancy is flagged (two different
#: scales never agree exactly; the rule itself names no tolerance: this is the product's choice)
DISCREPANCY_TOLERANCE = 0.01
NUMBER_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{6})$")
TIMESTAMP = {
    "depart": "shipped_at",
    "paper": "shipped_at",
    "deliver": "delivered_at",
    "receive": "received_at",
    "receive_discrepancy": "received_at",
    "reject": "received_at",
    "backfill": "backfilled_at",
    "dispose": "disposed_at",
    "close": "closed_at",
}


def next_state(state: str, event: str) -> str:
    """The state after ``event``; ``HazwasteError`` (409) when the table has no such pair."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e for (s, e) in TRANSITIONS if s == state and e != "receive_discrepancy")
        raise HazwasteError(
            f"a {state} manifest cannot take {event!r}; it can take: {', '.join(allowed) or 'nothing (it is finished)'}"
        ) from None


def check_number(number: str, *, year: int) -> None:
    """Refuse a manifest number that is not 14 digits starting with the transfer's year (Art. 15)."""
    match = NUMBER_RE.match(number or "")
    if match is None:
        raise HazwasteError(f"manifest number {number!r} must be 14 digits: year, province, prefecture, serial", 422)
    if int(match.group(1)) != year:
        raise HazwasteError(f"manifest number {number} does not start with the year {year}", 422)


def is_discrepancy(shipped_kg: float | None, received_kg: float) -> bool:
    if not shipped_kg:
        return received_kg > 0
    return abs(received_kg - shipped_kg) / shipped_kg > DISCREPANCY_TOLERANCE


def create(
    *,
    conn: psycopg.Connection,
    site_id: int,
    waste_type_id: int,
    trip: str,
    carrier_name: str,
    vehicle_plate: str,
    carrier_permit: str,
    receiver_name: str,
    receiver_licence: str,
    receiver_scope: list[str],
    method: str,
    container_ids: list[int],
    created_by: str,
    at: datetime,
) -> int:
    """A draft manifest for one trip and one waste type; the licence scope must cover the waste code."""
    wt = execute(conn, "SELECT waste_code, site_id FROM hw_waste_type WHERE id = %s", (waste_type_id,)).fetchone()
    if wt is None or wt[1] != site_id:
        raise HazwasteError(f"no waste type {waste_type_id} at this site", 422)
    if method not in ("use", "disposal"):
        raise HazwasteError("method is 'use' (利用) or 'disposal' (处置)", 422)
    if not codes.in_scope(wt[0], receiver_scope):
        raise HazwasteError(
            f"the receiver's licence {receiver_licence} does not cover {wt[0]} (scope: {', '.join(receiver_scope)})",
            422,
        )
    if not container_ids:
        raise HazwasteError("a manifest carries at least one container", 422)
    wrong = execute(
        conn,
        "SELECT code FROM hw_container WHERE id = ANY(%s) AND (waste_type_id <> %s OR site_id <> %s)",
        (container_ids, waste_type_id, site_id),
    ).fetchall()
    found = execute(conn, "SELECT count(*) FROM hw_container WHERE id = ANY(%s)", (container_ids,)).fetchone()[0]
    if wrong or found != len(set(container_ids)):
        raise HazwasteError(
            "every container must exist and hold this manifest's waste type (one manifest per "
            f"trip and waste type): {', '.join(r[0] for r in wrong) or 'unknown ids'}",
            422,
        )
    try:
        with conn.transaction():
            manifest_id = execute(
                conn,
                """INSERT INTO hw_manifest (site_id, state, waste_type_id, trip, carrier_name, vehicle_plate,
                       carrier_permit, receiver_name, receiver_licence, receiver_scope, method, created_by, created_at)
                   VALUES (%s, 'draft', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                (
                    site_id,
                    waste_type_id,
                    trip,
                    carrier_name,
                    vehicle_plate,
                    carrier_permit,
                    receiver_name,
                    receiver_licence,
                    receiver_scope,
                    method,
                    created_by,
                    at,
                ),
            ).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise HazwasteError(f"trip {trip!r} already has a manifest for this waste type") from None
    conn.cursor().executemany(
        "INSERT INTO hw_manifest_container (manifest_id, container_id) VALUES (%s, %s)",
        [(manifest_id, c) for c in sorted(set(container_ids))],
    )
    return manifest_id


def get(*, conn: psycopg.Connection, manifest_id: int, site_ids: list[int] | None = None) -> dict[str, Any] | None:
    """A manifest with its waste code, containers and event record (None when absent or out of scope)."""
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute(
        """SELECT m.*, s.code AS site, s.timezone, w.waste_code, w.name AS waste_name FROM hw_manifest m
           JOIN site s ON s.id = m.site_id JOIN hw_waste_type w ON w.id = m.waste_type_id
           WHERE m.id = %(id)s AND (%(sites)s::int[] IS NULL OR m.site_id = ANY(%(sites)s))""",
        {"id": manifest_id, "sites": site_ids},
    ).fetchone()
    if row is None:
        return None
    row["containers"] = [
        r["container_id"]
        for r in cur.execute(
            "SELECT container_id FROM hw_manifest_container WHERE manifest_id = %s ORDER BY 1", (manifest_id,)
        )
    ]
    row["events"] = cur.execute(
        "SELECT event, from_state, to_state, at, actor, detail FROM hw_manifest_event "
        "WHERE manifest_id = %s ORDER BY id",
        (manifest_id,),
    ).fetchall()
    return row


def apply_event(
    *,
    conn: psycopg.Connection,
    manifest_id: int,
    event: str,
    at: datetime,
    actor: str,
    number: str | None = None,
    received_kg: float | None = None,
    note: str | None = None,
    delivered_at: datetime | None = None,
) -> dict[str, Any]:
    """Move a manifest through the table, recording the event; return the manifest as it now stands."""
    m = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT m.*, s.timezone FROM hw_manifest m JOIN site s ON s.id = m.site_id WHERE m.id = %s FOR UPDATE OF m",
            (manifest_id,),
        )
        .fetchone()
    )
    if m is None:
        raise HazwasteError(f"no manifest {manifest_id}", 404)
    if event == "receive":
        if received_kg is None or received_kg < 0:
            raise HazwasteError("the receiver records the quantity received (received_kg)", 422)
        if is_discrepancy(m["shipped_kg"], received_kg):
            event = "receive_discrepancy"
    state = next_state(m["state"], event)
    changes: dict[str, Any] = {"state": state}
    if event in ("submit", "backfill"):
        check_number(number or "", year=(m["shipped_at"] or at).astimezone(ZoneInfo(m["timezone"])).year)
        changes["number"] = number
    if event in ("depart", "paper"):
        changes["shipped_kg"] = _ship(conn, m, at, actor)
    if event == "paper":
        changes["paper"] = True
    if event == "backfill":
        changes["delivered_at"] = delivered_at or at
    if event in ("receive", "receive_discrepancy"):
        changes |= {"received_kg": received_kg, "discrepancy": event == "receive_discrepancy"}
    if event in TIMESTAMP:
        changes[TIMESTAMP[event]] = at
    sets = ", ".join(f"{k} = %({k})s" for k in changes)
    try:
        with conn.transaction():
            execute(
                conn,
                f"UPDATE hw_manifest SET {sets}, updated_at = now() WHERE id = %(id)s",  # noqa: S608
                {**changes, "id": manifest_id},
            )
    except psycopg.errors.UniqueViolation:
        raise HazwasteError(f"manifest number {number} is already used") from None
    detail = {k: v for k, v in {"number": number, "received_kg": received_kg, "note": note}.items() if v is not None}
    execute(
        conn,
        "INSERT INTO hw_manifest_event (manifest_id, event, from_state, to_state, at, actor, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (manifest_id, event, m["state"], state, at, actor, orjson.dumps(detail).decode()),
    )
    return get(conn=conn, manifest_id=manifest_id)  # type: ignore[return-value]


def _ship(conn: psycopg.Connection, m: dict[str, Any], at: datetime, actor: str) -> float:
    """Record each container as sent out in the ledger (HJ 1259 B.5); return the shipped weight in kg."""
    stage = "sent_use" if m["method"] == "use" else "sent_disposal"
    total = 0.0
    for (container_id,) in execute(
        conn, "SELECT container_id FROM hw_manifest_container WHERE manifest_id = %s ORDER BY 1", (m["id"],)
    ).fetchall():
        row = ledger.record(
            conn=conn,
            container_id=container_id,
            stage=stage,
            at=at,
            handler=actor,
            recorded_by=actor,
            method=m["method"],
            receiver_type="持证经营单位",
            receiver_name=m["receiver_name"],
            receiver_licence=m["receiver_licence"],
            destination=m["receiver_name"],
        )
        total += row["quantity_kg"]
    return total


def deadlines(m: dict[str, Any], calendar: WorkCalendar, tz: str) -> dict[str, datetime]:
    """The running deadlines of a manifest: receiver confirmation, paper back-fill."""
    out: dict[str, datetime] = {}
    if m["state"] == "delivered" and m["delivered_at"] is not None:
        out["receipt"] = calendar.due(m["delivered_at"], RECEIPT_WORKDAYS, tz)
    if m["state"] == "paper_fallback" and m["shipped_at"] is not None:
        out["backfill"] = calendar.due(m["shipped_at"], BACKFILL_WORKDAYS, tz)
    return out


def overdue(*, conn: psycopg.Connection, now: datetime, calendar: WorkCalendar) -> list[dict[str, Any]]:
    """Open manifests past a deadline: ``{manifest, site, deadline, due}`` each."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT m.*, s.code AS site, s.timezone FROM hw_manifest m JOIN site s ON s.id = m.site_id
           WHERE m.state IN ('delivered', 'paper_fallback')"""
        )
        .fetchall()
    )
    out = []
    for m in rows:
        for kind, due in deadlines(m, calendar, m["timezone"]).items():
            if now >= due:
                out.append({"manifest": m, "site": m["site"], "deadline": kind, "due": due})
    return out


def list_manifests(
    *, conn: psycopg.Connection, site_ids: list[int] | None, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT m.*, s.code AS site, w.waste_code FROM hw_manifest m JOIN site s ON s.id = m.site_id
           JOIN hw_waste_type w ON w.id = m.waste_type_id
           WHERE (%(sites)s::int[] IS NULL OR m.site_id = ANY(%(sites)s))
             AND (%(state)s::text IS NULL OR m.state = %(state)s)
           ORDER BY m.id DESC LIMIT %(limit)s""",
            {"sites": site_ids, "state": state, "limit": limit},
        )
        .fetchall()
    )
