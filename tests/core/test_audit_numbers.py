"""Audit details hash the same before they are stored and after JSONB gives them back: ``-0.0`` comes back as
``0.0``, a whole float of 1e16 or more as an integer, NaN and the infinities as null. Entries written before the
canonical form (committed vectors in ``core/testvectors/audit.json``) hash as before."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import audit
from tests.fuzzing import budget

VECTORS = json.loads((Path(audit.__file__).parent / "testvectors" / "audit.json").read_text(encoding="utf-8"))


def test_entries_hashed_before_the_canonical_form_hash_as_before() -> None:
    key = audit.chain_key(VECTORS["secret_utf8"])
    at = datetime.fromisoformat(VECTORS["at"])
    assert len(VECTORS["entries"]) >= 5
    for e in VECTORS["entries"]:
        rest = (e["prev"], e["seq"], at, e["actor"], e["action"], e["target"], e["detail"])
        assert audit.entry_hash(*rest, site=e["site"], area=e["area"], key=key) == e["v2"]
        assert audit.entry_hash(*rest, version=1) == e["v1"]


@pytest.mark.parametrize(
    ("written", "read_back"),
    [
        (-0.0, 0.0),
        ([-0.0, {"x": -0.0}], [0.0, {"x": 0.0}]),
        (1e16, 10**16),
        (-1e300, -(10**300)),
        (float("nan"), None),
        (float("-inf"), None),
        (9007199254740992.0, 9007199254740992.0),
        (1.5e-7, 1.5e-7),
    ],
)
def test_what_jsonb_gives_back_hashes_as_what_was_written(written: object, read_back: object) -> None:
    at = datetime.fromisoformat(VECTORS["at"])
    key = audit.chain_key("k")
    a = audit.entry_hash(audit.GENESIS, 1, at, "u", "a", "t", {"v": written}, key=key)
    b = audit.entry_hash(audit.GENESIS, 1, at, "u", "a", "t", {"v": read_back}, key=key)
    assert a == b
    other = audit.entry_hash(audit.GENESIS, 1, at, "u", "a", "t", {"v": "0.0"}, key=key)
    assert a != other  # a number is not its spelling as a string


@pytest.mark.db
def test_negative_zero_and_huge_floats_verify_in_the_database(conn: psycopg.Connection) -> None:
    audit.append(conn, actor="u", action="energy.baseline", detail={"slope": -0.0, "coef": [-0.0, 1.0]})
    audit.append(conn, actor="u", action="x", detail={"big": 1e16, "huger": -1e300, "nan": float("nan")})
    assert conn.execute("SELECT detail->'slope', detail->'coef' FROM audit_entry WHERE seq = 1").fetchone() == (
        0.0,
        [0.0, 1.0],
    )  # what JSONB gives back
    assert audit.verify(conn) == (2, [])


@pytest.mark.db
@pytest.mark.parametrize("bad", [2**64, -(2**63) - 1, Decimal("1.5")])
def test_numbers_json_cannot_carry_exactly_are_refused(conn: psycopg.Connection, bad: object) -> None:
    with pytest.raises(TypeError):
        audit.append(conn, actor="u", action="x", detail={"v": bad})
    assert conn.execute("SELECT count(*) FROM audit_entry").fetchone()[0] == 0


# text JSONB can hold: no NUL (PostgreSQL refuses \u0000 in jsonb), no lone surrogates (not UTF-8)
_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()  # NaN, infinities, -0.0, subnormals, 1e308 included
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.db
@budget(60)
@given(detail=st.dictionaries(_text, _json, max_size=5))
def test_any_json_detail_written_through_the_chain_verifies(conn: psycopg.Connection, detail: dict) -> None:
    seq = audit.append(conn, actor="fuzz", action="fuzz", detail=detail)
    checked, problems = audit.verify(conn)
    assert (checked, problems) == (seq, [])
