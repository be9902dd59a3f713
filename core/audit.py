"""The tamper-evident audit record: append-only, each entry chained to the previous one by SHA-256.

Every package records what people and services did (logins, configuration changes, acknowledgements,
shelving, commands, bypasses, exports) with ``append`` inside its own transaction; ``verify`` walks the chain
and names the first entry that was edited, inserted out of order or deleted (``ehs audit verify``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from core.db import execute

GENESIS = "0" * 64
#: Serialises appends so that the chain has one order (pg_advisory_xact_lock key, arbitrary constant).
_LOCK_KEY = 0x45485341  # "EHSA"


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str,
               detail: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the entry."""
    body = orjson.dumps({"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "target": target,
                         "detail": detail}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append(conn: psycopg.Connection, *, actor: str, action: str, target: str = "",
           detail: dict[str, Any] | None = None) -> int:
    """Append one entry inside the caller's transaction; return its sequence number."""
    detail = orjson.loads(orjson.dumps(detail or {}))       # what JSONB will give back, so hashes verify
    execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    last = execute(conn, "SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = execute(conn, "SELECT date_trunc('milliseconds', clock_timestamp())").fetchone()[0]
    digest = entry_hash(prev, seq, at, actor, action, target, detail)
    execute(conn, "INSERT INTO audit_entry (seq, at, actor, action, target, detail, prev_hash, hash) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (seq, at, actor, action, target, orjson.dumps(detail).decode(), prev, digest))
    return seq


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str          # "edited", "deleted", "reordered"
    message: str


def verify(conn: psycopg.Connection, *, batch: int = 10000) -> tuple[int, list[Problem]]:
    """Check the whole chain; return the number of entries and the problems found (empty when intact)."""
    problems: list[Problem] = []
    expected_seq, prev = 1, GENESIS
    checked = 0
    # tuple rows whatever the connection's row factory (pooled API connections give dicts)
    cur = conn.cursor(name="audit_verify", row_factory=tuple_row) if not conn.autocommit \
        else conn.cursor(row_factory=tuple_row)
    cur.execute("SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_entry ORDER BY seq")
    while rows := cur.fetchmany(batch):
        for seq, at, actor, action, target, detail, prev_hash, stored in rows:
            checked += 1
            if seq != expected_seq:
                problems.append(Problem(expected_seq, "deleted",
                                        f"entries {expected_seq}..{seq - 1} are missing"))
            if prev_hash != prev:
                problems.append(Problem(seq, "reordered", f"entry {seq} does not follow the entry before it"))
            if entry_hash(prev_hash, seq, at, actor, action, target, detail) != stored:
                problems.append(Problem(seq, "edited", f"entry {seq} ({action} by {actor}) was changed"))
            expected_seq, prev = seq + 1, stored
    cur.close()
    return checked, problems
