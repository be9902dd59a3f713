"""The tamper-evident audit record: append-only, each entry chained to the previous one by a keyed hash.

Every package records what people and services did (logins, configuration changes, acknowledgements,
shelving, commands, bypasses, exports) with ``append`` inside its own transaction, naming the site and area
the action concerns (the API scopes reads by them); ``verify`` walks the chain and names every entry that was
edited, inserted out of order or deleted (``ehs audit verify``).

Hash versions (column ``hv``, migration 0021):

- **v2** (every entry written since 0021): HMAC-SHA256 under a key derived from ``EHS_SECRET_KEY``
  (``chain_key``, HKDF as for device keys), over the previous hash and the canonical JSON of the entry with its
  time in UTC (``2026-01-05T03:04:05.678000+00:00``), site and area. The database does not hold the key, so
  whoever can write the table (its owner, a superuser with the trigger disabled) cannot forge an entry, and the
  answer is the same in every session time zone.
- **v1** (entries written before 0021): plain SHA-256 over ``isoformat()`` of the time as the writing session
  saw it (its zone's offset, which was not recorded). Verified by trying the offset of the verifying session,
  then every offset a time zone can have (UTC-12 to UTC+14 in quarter hours): the instant is fixed, only its
  spelling varies, so this finds the writer's spelling without weakening the check. The first v2 entry chains
  from the last v1 hash, so the keyed chain covers the old prefix too; a v1 entry after a v2 one is refused.
  The one attack a key-less writer keeps, rewriting the *whole* chain as v1, is caught by the anchors.

Anchors (``anchor``): the head (seq, hash) signed with another derived key, written to files in the data
directory, which the database role cannot write: ``audit/head.json`` (replaced) and ``audit/daily/DAY.json``
(the first head of each day, kept; the daily report includes it). ``check_anchors`` compares them with the chain:
an anchored entry that is missing or has another hash means history was rewritten or cut.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from core.db import execute, fetch_all
from core.keys import Keyring, hkdf_sha256

GENESIS = "0" * 64
VERSION = 2
#: Serialises appends so that the chain has one order (pg_advisory_xact_lock key, arbitrary constant).
_LOCK_KEY = 0x45485341  # "EHSA"
#: Every UTC offset a time zone has had since 1970 is a whole quarter hour within these bounds.
_OFFSETS = [timezone(timedelta(minutes=m)) for m in range(-12 * 60, 14 * 60 + 1, 15)]

_key: bytes | None = None
#: Chain keys of the previous secrets (EHS_SECRET_KEY_PREVIOUS): entries written before a rotation still verify.
_previous: tuple[bytes, ...] = ()


def chain_key(secret: str) -> bytes:
    """The HMAC key of the chain, derived from the service secret for this purpose only."""
    return hkdf_sha256(secret.encode(), salt=b"ehs-monitor/audit", info=b"audit-chain:v2")


def anchor_key(secret: str) -> bytes:
    return hkdf_sha256(secret.encode(), salt=b"ehs-monitor/audit", info=b"audit-anchor:v1")


def configure(secret: str | Keyring) -> None:
    """Set the process's chain key (composition roots that build settings by hand); default: EHS_SECRET_KEY, with
    the keys of EHS_SECRET_KEY_PREVIOUS accepted when verifying."""
    global _key, _previous
    ring = Keyring.of(secret)
    _key, _previous = chain_key(ring.current), tuple(chain_key(s) for s in ring.previous)


def _ring() -> Keyring:
    from core.settings import get_settings

    return get_settings().keyring


def _secret() -> str:
    return _ring().current


def current_key() -> bytes:
    if _key is None:
        configure(_ring())
    return _key  # type: ignore[return-value]


def canonical_time(at: datetime) -> str:
    """The entry's instant in UTC, whatever the session's time zone."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # the integers orjson writes itself


def canonical(value: Any) -> Any:
    """``value`` as JSONB gives it back, for hashing: a detail hashes the same before it is stored and after it is
    read, whatever numbers it holds.

    - ``-0.0`` is ``0.0`` (PostgreSQL's numeric has no negative zero);
    - NaN and the infinities are ``null`` (what orjson writes for them, so what is stored);
    - a float that orjson writes with an exponent and that is a whole number (``1e+16``; every float of 1e16 or
      more) is the integer JSONB spells out (``10000000000000000``, exactly the decimal of the written digits);
    - an integer beyond 64 bits (read back from such a float) is written in full, where orjson would refuse it.

    Every value that is unchanged by a round trip through JSONB is left as it is, so the hashes of entries that
    verified before stay the same; only entries with one of the above (which never verified) hash otherwise.
    """
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value == 0.0:
            return 0.0
        written = orjson.dumps(value)
        if b"e" in written and value.is_integer():
            return canonical(int(Decimal(written.decode())))
        return value
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        return orjson.Fragment(str(value))
    return value


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    *,
    site: str | None = None,
    area: str | None = None,
    version: int = VERSION,
    key: bytes | None = None,
) -> str:
    """The hash of one entry: v2 keyed and zone-independent, v1 as written before migration 0021; ``detail`` in its
    ``canonical`` form (what JSONB gives back)."""
    if version == 1:
        body = orjson.dumps(
            {
                "seq": seq,
                "at": at.isoformat(),
                "actor": actor,
                "action": action,
                "target": target,
                "detail": canonical(detail),
            },
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(prev_hash.encode() + body).hexdigest()
    body = orjson.dumps(
        {
            "v": version,
            "seq": seq,
            "at": canonical_time(at),
            "actor": actor,
            "action": action,
            "target": target,
            "site": site,
            "area": area,
            "detail": canonical(detail),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hmac.new(key or current_key(), prev_hash.encode() + body, hashlib.sha256).hexdigest()


def append(
    conn: psycopg.Connection,
    *,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    site: str | None = None,
    area: str | None = None,
) -> int:
    """Append one entry inside the caller's transaction; return its sequence number.

    ``site`` and ``area`` (codes) name what the action concerns; readers limited to some sites or processes
    see only such entries (None: a plant-wide action, such as a user or a configuration change).
    """
    detail = orjson.loads(orjson.dumps(detail or {}))  # what JSONB will give back, so hashes verify
    execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    last = execute(conn, "SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = execute(conn, "SELECT date_trunc('milliseconds', clock_timestamp())").fetchone()[0]
    digest = entry_hash(prev, seq, at, actor, action, target, detail, site=site, area=area)
    execute(
        conn,
        "INSERT INTO audit_entry (seq, at, actor, action, target, detail, prev_hash, hash, site, area, hv) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (seq, at, actor, action, target, orjson.dumps(detail).decode(), prev, digest, site, area, VERSION),
    )
    return seq


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # "edited", "deleted", "reordered", "downgraded", "anchor"
    message: str


def _v1_matches(stored: str, prev_hash: str, seq: int, at: datetime, *rest: Any) -> bool:
    if entry_hash(prev_hash, seq, at, *rest, version=1) == stored:
        return True
    return any(entry_hash(prev_hash, seq, at.astimezone(tz), *rest, version=1) == stored for tz in _OFFSETS)


def verify(conn: psycopg.Connection, *, batch: int = 10000, key: bytes | None = None) -> tuple[int, list[Problem]]:
    """Check the whole chain; return the number of entries and the problems found (empty when intact).

    Without ``key``: the current chain key or, for entries written before a rotation, a previous one.
    """
    candidates = (key,) if key else (current_key(), *_previous)
    problems: list[Problem] = []
    expected_seq, prev, keyed = 1, GENESIS, False
    checked = 0
    # tuple rows whatever the connection's row factory (pooled API connections give dicts)
    cur = (
        conn.cursor(name="audit_verify", row_factory=tuple_row)
        if not conn.autocommit
        else conn.cursor(row_factory=tuple_row)
    )
    cur.execute(
        "SELECT seq, at, actor, action, target, detail, prev_hash, hash, site, area, hv FROM audit_entry ORDER BY seq"
    )
    while rows := cur.fetchmany(batch):
        for seq, at, actor, action, target, detail, prev_hash, stored, site, area, hv in rows:
            checked += 1
            if seq != expected_seq:
                problems.append(Problem(expected_seq, "deleted", f"entries {expected_seq}..{seq - 1} are missing"))
            if prev_hash != prev:
                problems.append(Problem(seq, "reordered", f"entry {seq} does not follow the entry before it"))
            if hv == 1 and keyed:
                problems.append(
                    Problem(
                        seq,
                        "downgraded",
                        f"entry {seq} ({action} by {actor}) is unkeyed after keyed entries: the chain was rewritten",
                    )
                )
            elif hv == 1:
                if not _v1_matches(stored, prev_hash, seq, at, actor, action, target, detail):
                    problems.append(Problem(seq, "edited", f"entry {seq} ({action} by {actor}) was changed"))
            elif hv != VERSION or all(
                entry_hash(prev_hash, seq, at, actor, action, target, detail, site=site, area=area, version=hv, key=k)
                != stored
                for k in candidates
            ):
                problems.append(Problem(seq, "edited", f"entry {seq} ({action} by {actor}) was changed"))
            keyed = keyed or hv != 1
            expected_seq, prev = seq + 1, stored
    cur.close()
    return checked, problems


# --- anchors: the head, signed, where the database role cannot write -------------------------------------------


def entries(
    conn: psycopg.Connection,
    *,
    before: int | None = None,
    actions: list[str] | None = None,
    sites: list[str] | None = None,
    processes: list[str] | None = None,
    prefix: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries newest first, with ``seq`` below ``before``: of the actions matching one of the LIKE patterns
    ``actions`` (None: every action) and ``prefix``; recorded for one of ``sites`` (codes) or naming one of them in
    ``detail.sites``; of an area of ``processes`` or plant-wide (no site); None: no limit."""
    return fetch_all(
        conn,
        """
        SELECT e.seq, e.at, e.actor, e.action, e.target, e.site, e.area, e.detail, e.hash FROM audit_entry e
        WHERE (%(after)s::bigint IS NULL OR e.seq < %(after)s)
          AND (%(actions)s::text[] IS NULL OR e.action LIKE ANY(%(actions)s))
          AND (%(sites)s::text[] IS NULL OR e.site = ANY(%(sites)s)
               OR (e.site IS NULL AND e.detail->'sites' ?| %(sites)s))
          AND (%(processes)s::text[] IS NULL OR e.site IS NULL
               OR EXISTS (SELECT 1 FROM area a JOIN site s ON s.id = a.site_id
                          WHERE s.code = e.site AND a.code = e.area AND a.process_type = ANY(%(processes)s)))
          AND (%(prefix)s::text IS NULL OR e.action LIKE %(prefix)s)
          AND (%(actor)s::text IS NULL OR e.actor = %(actor)s)
          AND (%(target)s::text IS NULL OR e.target = %(target)s)
          AND (%(since)s::timestamptz IS NULL OR e.at >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR e.at < %(until)s)
        ORDER BY e.seq DESC LIMIT %(limit)s""",
        {
            "after": before,
            "actions": actions,
            "sites": sites,
            "processes": processes,
            "prefix": prefix,
            "actor": actor,
            "target": target,
            "since": since,
            "until": until,
            "limit": limit,
        },
    )


def head(conn: psycopg.Connection) -> tuple[int, str]:
    """The last entry's (seq, hash); (0, GENESIS) for an empty record."""
    row = execute(conn, "SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def _signed(body: dict[str, Any], key: bytes) -> dict[str, Any]:
    mac = hmac.new(key, orjson.dumps(body, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()
    return {**body, "sig": mac}


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def anchor(conn: psycopg.Connection, directory: Path, *, now: datetime, secret: str | None = None) -> dict[str, Any]:
    """Write the signed head to ``directory/head.json`` and, once a day, ``directory/daily/DAY.json``."""
    seq, digest = head(conn)
    body = {"seq": seq, "hash": digest, "at": canonical_time(now), "database": conn.info.dbname}
    signed = _signed(body, anchor_key(secret or _secret()))
    data = orjson.dumps(signed, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    _write_atomically(directory / "head.json", data)
    daily = directory / "daily" / f"{now.astimezone(UTC).date().isoformat()}.json"
    if not daily.exists():
        _write_atomically(daily, data)
    return signed


def read_anchor(path: Path, *, secret: str | None = None) -> dict[str, Any] | None:
    """A signed head from a file; None when its signature does not verify."""
    body = orjson.loads(path.read_bytes())
    sig = body.pop("sig", None)
    for candidate in (secret,) if secret else _ring().secrets:  # anchors signed before a rotation still count
        expected = _signed(body, anchor_key(candidate))["sig"]
        if isinstance(sig, str) and hmac.compare_digest(sig, expected):
            return body
    return None


def daily_head(directory: Path, day: date, *, secret: str | None = None) -> dict[str, Any] | None:
    """The anchored head of ``day`` (UTC) for the daily report; None when that day has none."""
    path = directory / "daily" / f"{day.isoformat()}.json"
    return read_anchor(path, secret=secret) if path.exists() else None


def check_anchors(conn: psycopg.Connection, directory: Path, *, secret: str | None = None) -> list[Problem]:
    """Compare every anchor file with the chain: an anchored entry must still be there with the same hash."""
    files = ([directory / "head.json"] if (directory / "head.json").exists() else []) + sorted(
        (directory / "daily").glob("*.json")
    )
    problems = []
    for path in files:
        found = read_anchor(path, secret=secret)
        if found is None:
            problems.append(Problem(0, "anchor", f"{path.name}: the signature does not verify"))
            continue
        if found.get("database") not in (None, conn.info.dbname) or found["seq"] == 0:
            continue
        row = execute(conn, "SELECT hash FROM audit_entry WHERE seq = %s", (found["seq"],)).fetchone()
        if row is None:
            problems.append(
                Problem(
                    found["seq"],
                    "anchor",
                    f"entry {found['seq']} anchored in {path.name} at {found['at']} is gone: the record was cut",
                )
            )
        elif row[0] != found["hash"]:
            problems.append(
                Problem(
                    found["seq"],
                    "anchor",
                    f"entry {found['seq']} differs from its anchor in "
                    f"{path.name} ({found['at']}): history was rewritten",
                )
            )
    return problems
