"""The HJ 1259-2022 ledger: one record per container or package and stage, append-only, corrections as new rows.

Stages and their batch-code prefixes (standards.md 4.2): generation ``HWCS``, into storage ``HWRK``, out of
storage ``HWCK``, own use / own disposal ``HWZXLY`` / ``HWZXCZ``, sent out for use / disposal ``HWWWLY`` /
``HWWWCZ``, export for use / disposal ``HWCKLY`` / ``HWCKCZ``; a code is prefix + YYYYMMDD (the site's local
date) + a sequence of at least three digits per site, prefix and day, e.g. ``HWCS20211031001``.
The database refuses UPDATE, DELETE and TRUNCATE on ``hw_ledger`` (migration 0060); ``hw_container`` holds each
container's current stage, kept here from the ledger. Functions take a keyword-only ``conn`` and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core.db import execute
from hazwaste.catalogue import STORAGE_KINDS, HazwasteError

PREFIX = {
    "generation": "HWCS",
    "storage_in": "HWRK",
    "storage_out": "HWCK",
    "own_use": "HWZXLY",
    "own_disposal": "HWZXCZ",
    "sent_use": "HWWWLY",
    "sent_disposal": "HWWWCZ",
    "export_use": "HWCKLY",
    "export_disposal": "HWCKCZ",
}
STAGES = tuple(PREFIX)
FINAL = frozenset({"own_use", "own_disposal", "sent_use", "sent_disposal", "export_use", "export_disposal"})
SENT = frozenset({"sent_use", "sent_disposal", "export_use", "export_disposal"})
#: stage a container is in -> the stages that may follow (None: a new container)
NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({"generation"}),
    "generation": frozenset({"storage_in"}) | FINAL,
    "storage_in": frozenset({"storage_out"}),
    "storage_out": frozenset({"storage_in"}) | FINAL,  # a move to another store goes out and in again
    **{stage: frozenset() for stage in FINAL},
}
#: a scale reading older than this is not the container's weight
SCALE_MAX_AGE = timedelta(minutes=15)
CORRECTABLE = frozenset(
    {
        "at",
        "quantity_kg",
        "handler",
        "handler2",
        "destination",
        "method",
        "finished_at",
        "receiver_type",
        "receiver_name",
        "receiver_licence",
        "container_count",
    }
)


def batch_code(*, conn: psycopg.Connection, site_id: int, stage: str, at: datetime, tz: str) -> str:
    """The next batch code of ``stage`` for the site's local day of ``at``."""
    prefix = PREFIX[stage]
    day = at.astimezone(ZoneInfo(tz)).date()
    seq = execute(
        conn,
        """INSERT INTO hw_batch_seq (site_id, prefix, day, last) VALUES (%s, %s, %s, 1)
           ON CONFLICT (site_id, prefix, day) DO UPDATE SET last = hw_batch_seq.last + 1 RETURNING last""",
        (site_id, prefix, day),
    ).fetchone()[0]
    return f"{prefix}{day:%Y%m%d}{seq:03d}"


def create_container(
    *, conn: psycopg.Connection, site_id: int, code: str, waste_type_id: int, container_type: str, volume_l: float
) -> int:
    """Register a container or package of one waste type; return its id."""
    row = execute(
        conn, "SELECT site_id FROM hw_waste_type WHERE id = %s AND retired_at IS NULL", (waste_type_id,)
    ).fetchone()
    if row is None or row[0] != site_id:
        raise HazwasteError(f"no waste type {waste_type_id} at this site", 422)
    try:
        with conn.transaction():
            return execute(
                conn,
                "INSERT INTO hw_container (site_id, code, waste_type_id, container_type, volume_l) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (site_id, code, waste_type_id, container_type, volume_l),
            ).fetchone()[0]
    except psycopg.errors.UniqueViolation:
        raise HazwasteError(f"container {code!r} exists already") from None


def scale_weight(*, conn: psycopg.Connection, point_id: int, at: datetime) -> float:
    """The weight (kg) a scale point read last at or before ``at``, within ``SCALE_MAX_AGE``."""
    row = execute(
        conn,
        "SELECT value FROM reading WHERE point_id = %s AND time <= %s AND time > %s AND value IS NOT NULL "
        "ORDER BY time DESC LIMIT 1",
        (point_id, at, at - SCALE_MAX_AGE),
    ).fetchone()
    if row is None:
        raise HazwasteError(
            f"scale point {point_id} has no reading in the {SCALE_MAX_AGE} before {at.isoformat()}", 422
        )
    return float(row[0])


def _container(conn: psycopg.Connection, container_id: int) -> dict[str, Any]:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT c.*, w.code AS waste_code_local, w.incompatible_with, s.timezone
           FROM hw_container c JOIN hw_waste_type w ON w.id = c.waste_type_id JOIN site s ON s.id = c.site_id
           WHERE c.id = %s FOR UPDATE OF c""",
            (container_id,),
        )
        .fetchone()
    )
    if row is None:
        raise HazwasteError(f"no container {container_id}", 404)
    return row


def _facility(conn: psycopg.Connection, site_id: int, code: str) -> dict[str, Any]:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute("SELECT * FROM hw_facility WHERE site_id = %s AND code = %s AND retired_at IS NULL", (site_id, code))
        .fetchone()
    )
    if row is None:
        raise HazwasteError(f"no facility {code!r} at this site", 422)
    return row


def incompatible_in(*, conn: psycopg.Connection, facility_id: int, waste_type_id: int) -> list[str]:
    """Codes of containers in the facility whose waste must never be stored with ``waste_type_id``'s."""
    return [
        r[0]
        for r in execute(
            conn,
            """SELECT c.code FROM hw_container c JOIN hw_waste_type w ON w.id = c.waste_type_id,
                  hw_waste_type n
           WHERE n.id = %s AND c.facility_id = %s AND c.stage = 'storage_in'
             AND (w.code = ANY(n.incompatible_with) OR n.code = ANY(w.incompatible_with))
           ORDER BY c.code""",
            (waste_type_id, facility_id),
        ).fetchall()
    ]


def record(
    *,
    conn: psycopg.Connection,
    container_id: int,
    stage: str,
    at: datetime,
    handler: str,
    recorded_by: str,
    quantity_kg: float | None = None,
    scale_point_id: int | None = None,
    facility: str | None = None,
    handler2: str | None = None,
    destination: str | None = None,
    method: str | None = None,
    finished_at: datetime | None = None,
    receiver_type: str | None = None,
    receiver_name: str | None = None,
    receiver_licence: str | None = None,
    container_count: int = 1,
) -> dict[str, Any]:
    """Append the next stage of a container to the ledger; return the new row.

    The weight is typed in (``quantity_kg``), read from a scale point, or (after generation) the container's
    last recorded weight. Refused (``HazwasteError``): a stage that cannot follow the current one, storage with
    incompatible waste (Solid Waste Law Art. 81), a transfer without receiver and licence number.
    """
    if stage not in PREFIX:
        raise HazwasteError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}", 422)
    c = _container(conn, container_id)
    if stage not in NEXT[c["stage"]]:
        allowed = ", ".join(sorted(NEXT[c["stage"]])) or "none (the container's record is closed)"
        raise HazwasteError(f"container {c['code']} is at {c['stage'] or 'no stage'}; next may be: {allowed}")
    if c["last_at"] is not None and at < c["last_at"]:
        raise HazwasteError(
            f"{stage} at {at.isoformat()} is before the container's last step ({c['last_at'].isoformat()})", 422
        )
    weight_source = "manual"
    if scale_point_id is not None:
        quantity_kg, weight_source = scale_weight(conn=conn, point_id=scale_point_id, at=at), "scale"
    if quantity_kg is None:
        if c["weight_kg"] is None:
            raise HazwasteError("a weight is needed: type it in or name a scale point", 422)
        quantity_kg = c["weight_kg"]
    fac = _facility(conn, c["site_id"], facility) if facility else None
    if stage == "storage_in":
        if fac is None or fac["kind"] not in STORAGE_KINDS:
            raise HazwasteError(
                "into storage needs a storage facility (warehouse, yard, pit, tank farm or storage point)", 422
            )
        clash = incompatible_in(conn=conn, facility_id=fac["id"], waste_type_id=c["waste_type_id"])
        if clash:
            raise HazwasteError(
                f"incompatible waste is stored in {fac['code']} ({', '.join(clash)}): "
                "never store incompatible hazardous waste together"
            )
    if stage == "storage_out":
        fac = (
            fac
            or conn.cursor(row_factory=dict_row)
            .execute("SELECT * FROM hw_facility WHERE id = %s", (c["facility_id"],))
            .fetchone()
        )
    if stage in SENT and not (receiver_name and receiver_licence):
        raise HazwasteError("sending waste out needs the receiver's name and licence (or approval) number", 422)
    code = batch_code(conn=conn, site_id=c["site_id"], stage=stage, at=at, tz=c["timezone"])
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """INSERT INTO hw_ledger (site_id, container_id, stage, batch_code, at, waste_type_id, quantity_kg,
               container_count, facility_id, handler, handler2, source_batch, destination, method, finished_at,
               receiver_type, receiver_name, receiver_licence, weight_source, scale_point_id, recorded_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (
                c["site_id"],
                container_id,
                stage,
                code,
                at,
                c["waste_type_id"],
                quantity_kg,
                container_count,
                fac["id"] if fac else None,
                handler,
                handler2,
                c["last_batch"],
                destination,
                method,
                finished_at,
                receiver_type,
                receiver_name,
                receiver_licence,
                weight_source,
                scale_point_id,
                recorded_by,
            ),
        )
        .fetchone()
    )
    execute(
        conn,
        """UPDATE hw_container SET stage = %s, weight_kg = %s, last_batch = %s, last_at = %s,
               facility_id = %s, first_stored_at = coalesce(first_stored_at, %s) WHERE id = %s""",
        (
            stage,
            quantity_kg,
            code,
            at,
            fac["id"] if stage == "storage_in" else None,
            at if stage == "storage_in" else None,
            container_id,
        ),
    )
    return row


def correct(
    *, conn: psycopg.Connection, entry_id: int, changes: dict[str, Any], reason: str, recorded_by: str
) -> dict[str, Any]:
    """Record a correction of a ledger entry as a new row (the original stays as it was)."""
    bad = set(changes) - CORRECTABLE
    if bad:
        raise HazwasteError(
            f"cannot correct {', '.join(sorted(bad))}; correctable: {', '.join(sorted(CORRECTABLE))}", 422
        )
    if not reason.strip():
        raise HazwasteError("a correction needs a reason", 422)
    cur = conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM hw_ledger WHERE coalesce(corrects_id, id) = %s ORDER BY id DESC LIMIT 1", (entry_id,)
    )
    last = cur.fetchone()
    if last is None:
        raise HazwasteError(f"no ledger entry {entry_id}", 404)
    if last["corrects_id"] is None and last["id"] != entry_id:
        raise HazwasteError(f"entry {entry_id} is itself a correction; correct the original", 422)
    skip = {"id", "recorded_at", "corrects_id", "reason", "recorded_by"}
    values = {k: v for k, v in last.items() if k not in skip} | changes
    values |= {"corrects_id": entry_id, "reason": reason, "recorded_by": recorded_by}
    names = ", ".join(values)
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"INSERT INTO hw_ledger ({names}) VALUES ({', '.join(['%s'] * len(values))}) RETURNING *",  # noqa: S608
            list(values.values()),
        )
        .fetchone()
    )
    execute(
        conn,
        "UPDATE hw_container SET weight_kg = %s, last_at = %s WHERE id = %s AND last_batch = %s",
        (row["quantity_kg"], row["at"], row["container_id"], row["batch_code"]),
    )
    return row


def history(*, conn: psycopg.Connection, container_id: int) -> list[dict[str, Any]]:
    """The container's ledger as it stands (corrections applied), oldest first."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute("SELECT * FROM hw_ledger_current WHERE container_id = %s ORDER BY at, entry_id", (container_id,))
        .fetchall()
    )


def get_container(
    *, conn: psycopg.Connection, container_id: int, site_ids: list[int] | None = None
) -> dict[str, Any] | None:
    """A container with its waste type, site and facility (None when absent or outside ``site_ids``)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT c.*, s.code AS site, w.code AS waste_type, w.name AS waste_name, w.list_name, w.waste_code,
                  w.category, w.hazards, w.form, w.constituents, w.precautions, f.code AS facility
           FROM hw_container c JOIN site s ON s.id = c.site_id JOIN hw_waste_type w ON w.id = c.waste_type_id
           LEFT JOIN hw_facility f ON f.id = c.facility_id
           WHERE c.id = %(id)s AND (%(sites)s::int[] IS NULL OR c.site_id = ANY(%(sites)s))""",
            {"id": container_id, "sites": site_ids},
        )
        .fetchone()
    )


def list_containers(
    *,
    conn: psycopg.Connection,
    site_ids: list[int] | None,
    site_id: int | None = None,
    stage: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Containers in id order after ``after`` (``limit + 1`` rows, for the page cursor)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT c.*, s.code AS site, w.code AS waste_type, w.waste_code, f.code AS facility
           FROM hw_container c JOIN site s ON s.id = c.site_id JOIN hw_waste_type w ON w.id = c.waste_type_id
           LEFT JOIN hw_facility f ON f.id = c.facility_id
           WHERE (%(sites)s::int[] IS NULL OR c.site_id = ANY(%(sites)s))
             AND (%(site)s::int IS NULL OR c.site_id = %(site)s)
             AND (%(stage)s::text IS NULL OR c.stage = %(stage)s) AND c.id > %(after)s
           ORDER BY c.id LIMIT %(limit)s""",
            {"sites": site_ids, "site": site_id, "stage": stage, "after": after or 0, "limit": limit + 1},
        )
        .fetchall()
    )


def list_entries(
    *,
    conn: psycopg.Connection,
    site_ids: list[int] | None,
    site_id: int | None = None,
    stage: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Ledger entries as they stand, in id order after ``after`` (``limit + 1`` rows)."""
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            """SELECT l.*, s.code AS site, c.code AS container FROM hw_ledger_current l
           JOIN site s ON s.id = l.site_id JOIN hw_container c ON c.id = l.container_id
           WHERE (%(sites)s::int[] IS NULL OR l.site_id = ANY(%(sites)s))
             AND (%(site)s::int IS NULL OR l.site_id = %(site)s)
             AND (%(stage)s::text IS NULL OR l.stage = %(stage)s) AND l.entry_id > %(after)s
           ORDER BY l.entry_id LIMIT %(limit)s""",
            {"sites": site_ids, "site": site_id, "stage": stage, "after": after or 0, "limit": limit + 1},
        )
        .fetchall()
    )


def entry_site(*, conn: psycopg.Connection, entry_id: int) -> int | None:
    row = execute(conn, "SELECT site_id FROM hw_ledger WHERE id = %s AND corrects_id IS NULL", (entry_id,)).fetchone()
    return row[0] if row else None


def generated_at(*, conn: psycopg.Connection, container_id: int) -> datetime | None:
    """When the container's waste was produced (its generation entry in the current ledger), None if unknown."""
    row = execute(
        conn, "SELECT at FROM hw_ledger_current WHERE container_id = %s AND stage = 'generation'", (container_id,)
    ).fetchone()
    return None if row is None else row[0]


def container_weights(*, conn: psycopg.Connection, container_ids: list[int]) -> list[dict[str, Any] | None]:
    """``{"code", "weight_kg"}`` of each container, in the order given (None for an unknown id)."""
    found = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(
            "SELECT id, code, weight_kg FROM hw_container WHERE id = ANY(%s)", (list(container_ids),)
        ).fetchall():
            found[row.pop("id")] = row
    return [found.get(cid) for cid in container_ids]
