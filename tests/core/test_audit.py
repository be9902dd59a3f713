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
    conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")  # what an attacker with
    conn.execute(sql, params)  # database rights can do
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
    _tamper(conn, 'UPDATE audit_entry SET detail = \'{"comment": "nothing"}\' WHERE seq = 3')
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]


def test_a_deleted_entry_is_named(conn: psycopg.Connection) -> None:
    _fill(conn)
    _tamper(conn, "DELETE FROM audit_entry WHERE seq = 2")
    _, problems = audit.verify(conn)
    assert (2, "deleted") in [(p.seq, p.kind) for p in problems]


def test_a_rehashed_forgery_still_breaks_the_chain(conn: psycopg.Connection) -> None:
    """Even with the key, a rewritten entry's new hash no longer matches the next entry's prev_hash."""
    _fill(conn)
    row = conn.execute("SELECT seq, at, actor, action, target, prev_hash FROM audit_entry WHERE seq = 2").fetchone()
    forged = audit.entry_hash(row[5], row[0], row[1], "someone-else", row[3], row[4], {})
    _tamper(conn, "UPDATE audit_entry SET actor = 'someone-else', detail = '{}', hash = %s WHERE seq = 2", (forged,))
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(3, "reordered")]


def _rechain(conn: psycopg.Connection, from_seq: int, hasher) -> None:
    """Rewrite every entry from ``from_seq`` on with ``hasher``, as one who can write the table would."""
    rows = conn.execute(
        "SELECT seq, at, actor, action, target, detail, prev_hash, site, area FROM audit_entry "
        "WHERE seq >= %s ORDER BY seq",
        (from_seq,),
    ).fetchall()
    prev = rows[0][6]
    conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    for seq, at, actor, action, target, detail, _, site, area in rows:
        if seq == from_seq:
            actor = "someone-else"
        digest, hv = hasher(prev, seq, at, actor, action, target, detail, site, area)
        conn.execute(
            "UPDATE audit_entry SET actor = %s, prev_hash = %s, hash = %s, hv = %s WHERE seq = %s",
            (actor, prev, digest, hv, seq),
        )
        prev = digest
    conn.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")


def test_a_forger_without_the_key_is_caught_and_named(conn: psycopg.Connection) -> None:
    """The database's owner rewrites entry 2 and re-chains the rest without the key: verify names entry 2 on."""
    _fill(conn)
    wrong = audit.chain_key("not the service secret")
    _rechain(
        conn,
        2,
        lambda prev, seq, at, actor, action, target, detail, site, area: (
            audit.entry_hash(prev, seq, at, actor, action, target, detail, site=site, area=area, key=wrong),
            2,
        ),
    )
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(2, "edited"), (3, "edited"), (4, "edited"), (5, "edited")]
    assert "someone-else" in problems[0].message


def test_rewriting_keyed_entries_as_unkeyed_is_caught(conn: psycopg.Connection) -> None:
    """Downgrading entries to the pre-0021 plain SHA-256 form does not pass for history."""
    _fill(conn)
    _rechain(
        conn,
        3,
        lambda prev, seq, at, actor, action, target, detail, site, area: (
            audit.entry_hash(prev, seq, at, actor, action, target, detail, version=1),
            1,
        ),
    )
    _, problems = audit.verify(conn)
    assert [(p.seq, p.kind) for p in problems] == [(3, "downgraded"), (4, "downgraded"), (5, "downgraded")]


@pytest.mark.parametrize("writer_zone", ["UTC", "Asia/Shanghai", "America/St_Johns"])
def test_the_answer_is_the_same_in_every_time_zone(conn: psycopg.Connection, writer_zone: str) -> None:
    """Entries written in one session time zone verify in any other, and a tampered one is named in all."""
    conn.execute("SELECT set_config('TimeZone', %s, true)", (writer_zone,))
    _fill(conn, 3)
    for zone in ("UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata"):
        conn.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
        assert audit.verify(conn) == (3, []), zone
    _tamper(conn, "UPDATE audit_entry SET target = 'alarm/99' WHERE seq = 2")
    for zone in ("UTC", "Asia/Shanghai"):
        conn.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
        assert [(p.seq, p.kind) for p in audit.verify(conn)[1]] == [(2, "edited")], zone


def test_entries_from_before_the_keyed_chain_still_verify_in_any_zone(conn: psycopg.Connection) -> None:
    """Pre-0021 entries (v1: SHA-256 over the writer's local time) verify whatever zone wrote or reads them, and
    the keyed entries that follow chain from them."""
    conn.execute("SET LOCAL TimeZone = 'Asia/Shanghai'")
    prev = audit.GENESIS
    for seq in (1, 2):
        at = conn.execute("SELECT date_trunc('milliseconds', clock_timestamp())").fetchone()[0]
        digest = audit.entry_hash(prev, seq, at, "cli:old", "config.apply", "plant.yaml", {"n": seq}, version=1)
        conn.execute(
            "INSERT INTO audit_entry (seq, at, actor, action, target, detail, prev_hash, hash, hv) "
            "VALUES (%s, %s, 'cli:old', 'config.apply', 'plant.yaml', %s, %s, %s, 1)",
            (seq, at, f'{{"n": {seq}}}', prev, digest),
        )
        prev = digest
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    _fill(conn, 2)
    assert conn.execute("SELECT array_agg(hv ORDER BY seq) FROM audit_entry").fetchone()[0] == [1, 1, 2, 2]
    for zone in ("UTC", "Europe/Berlin", "Asia/Shanghai"):
        conn.execute("SELECT set_config('TimeZone', %s, true)", (zone,))
        assert audit.verify(conn) == (4, []), zone
    _tamper(conn, "UPDATE audit_entry SET detail = '{\"n\": 7}' WHERE seq = 1")
    assert [(p.seq, p.kind) for p in audit.verify(conn)[1]] == [(1, "edited")]


def test_anchors_outside_the_database_catch_a_rewritten_or_cut_chain(conn: psycopg.Connection, tmp_path) -> None:
    """Whoever holds the key and the table can rewrite the chain consistently, but not the signed head files."""
    from datetime import UTC, datetime

    _fill(conn, 4)
    signed = audit.anchor(conn, tmp_path, now=datetime(2026, 3, 1, 23, 0, tzinfo=UTC))
    assert signed["seq"] == 4 and (tmp_path / "head.json").exists()
    assert audit.daily_head(tmp_path, datetime(2026, 3, 1).date())["hash"] == signed["hash"]
    assert audit.check_anchors(conn, tmp_path) == []
    _rechain(
        conn,
        2,
        lambda prev, seq, at, actor, action, target, detail, site, area: (
            audit.entry_hash(prev, seq, at, actor, action, target, detail, site=site, area=area),
            2,
        ),
    )
    assert audit.verify(conn) == (4, [])  # consistent with the key...
    assert [(p.seq, p.kind) for p in audit.check_anchors(conn, tmp_path)] == [(4, "anchor"), (4, "anchor")]
    forged = (tmp_path / "head.json").read_text().replace(signed["hash"], "0" * 64)
    (tmp_path / "head.json").write_text(forged)  # ...and the files cannot be re-signed without it
    assert "signature" in audit.check_anchors(conn, tmp_path)[0].message
