"""Exchange files: the receiver's confirmations imported (strictly, all or nothing, through the manifest state
machine, discrepancies flagged as when typed in; fuzzed against the real database) and the manifests exported in
the rules' field order."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook
from typer.testing import CliRunner

from cli.main import app
from core.settings import get_settings
from hazwaste import exchange, manifests
from hazwaste.exchange import ReceiptsRefused, import_receipts
from tests.fuzzing import budget
from tests.hazwaste.test_manifests import RECEIVER, SH, _draft, _stored
from tests.hazwaste.world import seed
from tests.support import unique_code

pytestmark = pytest.mark.db
NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
LICENCE = RECEIVER["receiver_licence"]


def _number() -> str:
    return f"2026{random.randrange(10**10):010d}"  # noqa: S311 - a test number, unique enough in a rollback


def _manifest(conn, w, *, kg: float = 100.0, state: str = "delivered") -> tuple[int, str]:
    """A manifest of two containers of ``kg`` each, moved to ``state`` (in_transit or delivered)."""
    mid = _draft(conn, w, _stored(conn, w, "electrolyte", kg), trip=unique_code("T"))
    t = datetime(2026, 1, 6, 9, 0, tzinfo=SH)
    number = _number()
    manifests.apply_event(conn=conn, manifest_id=mid, event="submit", at=t, actor="u", number=number)
    manifests.apply_event(conn=conn, manifest_id=mid, event="depart", at=t + timedelta(hours=1), actor="u")
    if state == "delivered":
        manifests.apply_event(conn=conn, manifest_id=mid, event="deliver", at=t + timedelta(hours=5), actor="u")
    return mid, number


def _csv(rows: list[list[str]], header=("联单编号", "接收量", "计量单位", "接收日期", "经营许可证编号")) -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def _states(conn, ids) -> list[tuple]:
    return conn.execute(
        "SELECT id, state, received_kg, (SELECT count(*) FROM hw_manifest_event e WHERE e.manifest_id = m.id) "
        "FROM hw_manifest m WHERE id = ANY(%s) ORDER BY id",
        (list(ids),),
    ).fetchall()


def test_receipts_confirm_manifests_through_the_state_machine(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    exact, n_exact = _manifest(conn, w)
    short, n_short = _manifest(conn, w)
    moving, n_moving = _manifest(conn, w, state="in_transit")
    data = _csv(
        [
            [n_exact, "199.5", "kg", "2026-01-07", LICENCE],
            [n_short, "0.18", "吨", "2026/1/8 10:30", LICENCE],
            [n_moving, "200", "", "2026-01-09", LICENCE],
        ]
    )
    result = import_receipts(conn=conn, data=data, filename="receipts.csv", site_ids=None, actor="u:imp", now=NOW)
    assert (result["rows"], result["received"], result["discrepancies"], result["unchanged"]) == (3, 2, 1, 0)
    got = {m["id"]: m for m in (manifests.get(conn=conn, manifest_id=i) for i in (exact, short, moving))}
    assert (got[exact]["state"], got[exact]["received_kg"], got[exact]["discrepancy"]) == ("received", 199.5, False)
    assert (got[short]["state"], got[short]["received_kg"], got[short]["discrepancy"]) == ("discrepancy", 180.0, True)
    assert got[short]["received_at"] == datetime(2026, 1, 8, 10, 30, tzinfo=SH)
    assert [e["event"] for e in got[moving]["events"]][-2:] == ["deliver", "receive"]
    assert got[moving]["state"] == "received"
    # the same file again changes nothing
    again = import_receipts(conn=conn, data=data, filename="receipts.csv", site_ids=None, actor="u", now=NOW)
    assert (again["unchanged"], again["manifests"]) == (3, [])
    # XLSX, English headers, a sheet date
    other, n_other = _manifest(conn, w)
    wb = Workbook()
    wb.active.append(["manifest_number", "received_kg", "receipt_date", "receiver_licence"])
    wb.active.append([int(n_other), 200, datetime(2026, 1, 10, 9, 0), LICENCE])
    buf = io.BytesIO()
    wb.save(buf)
    result = import_receipts(conn=conn, data=buf.getvalue(), filename="r.xlsx", site_ids=None, actor="u", now=NOW)
    assert result["manifests"] == [{"line": 2, "number": n_other, "state": "received", "received_kg": 200.0}]


def test_a_refused_file_names_line_and_column_and_applies_nothing(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    good, n_good = _manifest(conn, w)
    before = _states(conn, [good])
    cases = {
        "line 3, column 接收日期: empty": [[n_good, "200", "kg", "2026-01-07", LICENCE], [_number(), "1", "", "", "X"]],
        "line 2, column 接收量: '12kg'": [[n_good, "12kg", "", "2026-01-07", LICENCE]],
        "line 2, column 计量单位": [[n_good, "12", "lb", "2026-01-07", LICENCE]],
        "line 2, column 接收日期: '2026-02-30' is not a calendar date": [[n_good, "1", "", "2026-02-30", LICENCE]],
        "line 3, column 联单编号: manifest": [
            [n_good, "200", "kg", "2026-01-07", LICENCE],
            [n_good, "200", "kg", "2026-01-07", LICENCE],
        ],
        f"line 2, column 经营许可证编号: OTHER-1 is not the receiver named on manifest {n_good}": [
            [n_good, "200", "kg", "2026-01-07", "OTHER-1"]
        ],
        "line 2, column 接收日期: 2026-01-05 is before the manifest was delivered": [
            [n_good, "200", "kg", "2026-01-05", LICENCE]
        ],
        "line 2, column 接收日期: 2026-03-01 is in the future": [[n_good, "200", "kg", "2026-03-01", LICENCE]],
    }
    for expected, rows in cases.items():
        with pytest.raises(ReceiptsRefused) as info:
            import_receipts(conn=conn, data=_csv(rows), filename="r.csv", site_ids=None, actor="u", now=NOW)
        assert any(expected in p for p in info.value.problems), (expected, info.value.problems)
        assert info.value.status == 422 and info.value.extra["problems"] == info.value.problems
    with pytest.raises(ReceiptsRefused, match="no column 接收日期"):
        import_receipts(
            conn=conn,
            data=_csv([[n_good, "1", LICENCE]], ("联单编号", "接收量", "许可证编号")),
            filename="r.csv",
            site_ids=None,
            actor="u",
            now=NOW,
        )
    with pytest.raises(ReceiptsRefused, match=f"no manifest {n_good}"):  # another site's caller
        import_receipts(
            conn=conn,
            data=_csv([[n_good, "200", "", "2026-01-07", LICENCE]]),
            filename="r.csv",
            site_ids=[-1],
            actor="u",
            now=NOW,
        )
    # a second row that the state machine refuses rolls back the first row's confirmation
    draft = _draft(conn, w, _stored(conn, w, "electrolyte", 10.0))
    n_draft = _number()
    manifests.apply_event(conn=conn, manifest_id=draft, event="submit", at=NOW, actor="u", number=n_draft)
    with pytest.raises(ReceiptsRefused, match=f"manifest {n_draft} is submitted"):
        import_receipts(
            conn=conn,
            data=_csv([[n_good, "200", "", "2026-01-07", LICENCE], [n_draft, "20", "", "2026-01-19", LICENCE]]),
            filename="r.csv",
            site_ids=None,
            actor="u",
            now=NOW,
        )
    assert _states(conn, [good]) == before


def test_manifests_export_in_the_rules_field_order(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    _, number = _manifest(conn, w)
    start, end = datetime(2026, 1, 1, tzinfo=SH), datetime(2026, 2, 1, tzinfo=SH)
    rows = exchange.manifest_rows(conn=conn, site_id=w.site_id, start=start, end=end)
    assert [h for h, _ in exchange.MANIFEST_COLUMNS][:5] == [
        "联单编号",
        "移出人",
        "危险废物名称",
        "危险废物类别",
        "危险废物代码",
    ]
    (row,) = rows
    assert (row["number"], row["producer_name"], row["waste_code"], row["shipped_kg"], row["state"]) == (
        number,
        "示例电池有限公司",
        "900-404-06",
        200.0,
        "已送达",
    )
    assert exchange.manifest_rows(conn=conn, site_id=w.site_id, start=end, end=end + timedelta(days=31)) == []


_CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "200", "0.2", "-1", "1e9", "nan", "2026-01-07", "2026-13-01", "吨", "kg", LICENCE]),
)


@budget(40)
@given(
    rows=st.lists(st.lists(_CELL, min_size=0, max_size=6), min_size=0, max_size=5),
    use_numbers=st.lists(st.booleans(), min_size=5, max_size=5),
    header=st.sampled_from(
        [
            ("联单编号", "接收量", "计量单位", "接收日期", "经营许可证编号"),
            ("联单编号", "接收量", "接收日期"),
            ("manifest_number", "received_kg", "receipt_date", "receiver_licence", "x"),
        ]
    ),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_fuzzed_receipts_either_apply_whole_or_change_nothing(
    conn: psycopg.Connection, rows, use_numbers, header, raw
) -> None:
    if not hasattr(conn, "_hw_world"):
        w = seed(conn, unique_code("hw"))
        conn._hw_world = (w, [_manifest(conn, w) for _ in range(2)])  # type: ignore[attr-defined]
    _, made = conn._hw_world  # type: ignore[attr-defined]
    ids = [m for m, _ in made]
    for i, row in enumerate(rows):
        if use_numbers[i] and row:
            row[0] = made[i % 2][1]
    data = raw if raw is not None else _csv(rows, header)
    before = _states(conn, ids)
    try:
        with conn.transaction():
            result = import_receipts(conn=conn, data=data, filename="f.csv", site_ids=None, actor="fz", now=NOW)
            after = _states(conn, ids)
            assert result["rows"] >= 1
            assert sum(a != b for a, b in zip(before, after, strict=True)) == len(result["manifests"])
            for a in result["manifests"]:
                assert a["state"] in ("received", "discrepancy")
            raise _Undo
    except ReceiptsRefused as exc:
        assert exc.problems and all(p.startswith("line ") for p in exc.problems), exc.problems
        assert _states(conn, ids) == before
    except _Undo:
        pass
    assert _states(conn, ids) == before


class _Undo(Exception):
    """Roll the applied import back so that each example starts from the same manifests."""


def test_console_import_receipts(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with psycopg.connect(database_url) as c:
        w = seed(c, unique_code("hw"))
        mid, number = _manifest(c, w)
    monkeypatch.setenv("EHS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        bad = tmp_path / "bad.csv"
        bad.write_bytes(_csv([[number, "lots", "kg", "2026-01-07", LICENCE]]))
        refused = CliRunner().invoke(app, ["hazwaste", "import-receipts", str(bad)])
        assert refused.exit_code == 1 and "line 2, column 接收量" in refused.output
        good = tmp_path / "good.csv"
        good.write_bytes(_csv([[number, "150", "kg", "2026-01-07", LICENCE]]))
        done = CliRunner().invoke(app, ["hazwaste", "import-receipts", str(good), "--actor", "li"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output.strip().splitlines()[-1]) == {
            "rows": 1,
            "received": 0,
            "discrepancies": 1,
            "unchanged": 0,
        }
    finally:
        get_settings.cache_clear()
    with psycopg.connect(database_url) as c:
        assert c.execute("SELECT state, received_kg FROM hw_manifest WHERE id = %s", (mid,)).fetchone() == (
            "discrepancy",
            150.0,
        )
        assert c.execute(
            "SELECT actor FROM audit_entry WHERE action = 'hazwaste.manifest.import_receipts'"
        ).fetchall() == [("console:li",)]
