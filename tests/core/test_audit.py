"""The audit chain detects an edited, deleted or forged entry and says which."""

from __future__ import annotations

import psycopg
import pytest

from core import audit

pytestmark = pytest.mark.db


def _fill(conn: psycopg.Connection, n: int = 5) -> None:
    for i in range(n):
        audit.append(conn, actor=f"user{i}", action="alarm.ack", target=f"alarm/{i}", detail={"comment": f"看到了 {i}"})


def _tamper(conn: psycopg.Connection, sql: str, params: tuple = ()) -> None:
    conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")   # what an attacker with
    conn.execute(sql, params)                                                        # database rights can do
    conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")


def test_an_intact_chain_verifies(conn: psycopg.Connection) -> None:
    _fill(conn)
    assert audit.verify(conn) == (5, [])


def test_updates_and_deletes_are_refused(conn: psycopg.Connection) -> None:
    _fill(conn, 1)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"), conn.transaction():
        conn.execute("UPDATE audit_entry SET actor = 'x'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"), conn.transaction():
        conn.execute("DELETE FROM audit_entry")


def test_an_edited_entry_is_named(conn: psycopg.Connection) -> None:
    _fill(conn)
    _tamper(conn, "UPDATE audit_entry SET detail = '{\"comment\": \"nothing\"}' WHERE seq = 3")
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]


def test_a_deleted_entry_is_named(conn: psycopg.Connection) -> None:
    _fill(conn)
    _tamper(conn, "DELETE FROM audit_entry WHERE seq = 2")
    _, problems = audit.verify(conn)
    assert (2, "deleted") in [(p.seq, p.kind) for p in problems]


def test_a_rehashed_forgery_still_breaks_the_chain(conn: psycopg.Connection) -> None:
    _fill(conn)
    row = conn.execute("SELECT seq, at, actor, action, target, prev_hash FROM audit_entry WHERE seq = 2").fetchone()
    forged = audit.entry_hash(row[5], row[0], row[1], "someone-else", row[3], row[4], {})
    _tamper(conn, "UPDATE audit_entry SET actor = 'someone-else', detail = '{}', hash = %s WHERE seq = 2", (forged,))
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(3, "reordered")]
