"""Property tests of the input parsers against the real database: factor files and certificate imports. Whatever
the file holds, the parser either names line and field of every problem, or its rows go into the database and
come back unchanged; a certificate serial is never stored twice."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbon import service
from carbon.factors import DATA_DIR, FactorFileError, parse_library
from carbon.imports import COLUMNS, parse_certificates
from carbon.service import CarbonError
from tests.carbon.world import seed

pytestmark = pytest.mark.db
PROBLEM = re.compile(r"^(grid|fuel|heat|gwp|certificates)\.csv(:\d+)?: |^VERSION:1: ")
TEXTS = {
    name: (DATA_DIR / name).read_text(encoding="utf-8") for name in ("grid.csv", "fuel.csv", "heat.csv", "gwp.csv")
}
GRID_HEADER = [
    "region_level",
    "region_code",
    "data_year",
    "basis",
    "value_kg_per_kwh",
    "publication_ref",
    "published_on",
]
cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
grid_row = st.tuples(
    st.sampled_from(["national", "regional", "province", "county", ""]) | cell,
    st.sampled_from(["CN", "jiangsu", "east", "x y", ""]),
    st.sampled_from(["2021", "2022", "1989", "20x3", ""]) | st.integers(1900, 2200).map(str),
    st.sampled_from(["average", "fossil", "excl_market_nonfossil", "mix"]),
    st.sampled_from(["0.5", "-1", "nan", "inf", "7", ""]) | st.floats(0, 6, allow_nan=False).map(repr),
    st.sampled_from(["公告2024年第12号", "", 'quote " and, comma']) | cell,
    st.sampled_from(["2024-04-12", "", "2024-13-01"]),
)


def _csv(header: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(grid_row, max_size=8), raw=st.none() | st.text(max_size=80))
def test_any_grid_file_is_refused_by_line_and_field_or_stored_unchanged(conn: psycopg.Connection, rows, raw) -> None:
    text = raw if raw is not None else _csv(GRID_HEADER, rows)
    version = f"p{uuid.uuid4().hex[:8]}"
    try:
        lib = parse_library(version, {**TEXTS, "grid.csv": text})
    except FactorFileError as exc:
        assert exc.problems and all(PROBLEM.match(p) for p in exc.problems), exc.problems
        return
    with conn.transaction(force_rollback=True):
        service.import_library(conn=conn, library=lib, actor="t", activate=False)
        back = service.library(conn=conn, version=version)
        assert {
            (f.row_key, f.value, f.data_year, f.basis, f.publication_ref, f.published_on) for f in back.factors
        } == {(f.row_key, f.value, f.data_year, f.basis, f.publication_ref, f.published_on) for f in lib.factors}


serial = st.integers(0, 60)
cert_row = st.tuples(
    st.sampled_from(["GEC", "I-REC", "bad scheme", ""]),
    st.sampled_from(["", "A", "A/B"]),
    serial.map(str) | st.sampled_from(["-1", "x", "1e3", ""]),
    serial.map(str),
    st.sampled_from(["2025", "1999", "2024"]),
    st.sampled_from(["2025-01-01", "2025-02-30", ""]),
    st.sampled_from(["2026-01-01", "2024-01-01"]),
    st.sampled_from(["ref-1", "", "参考 2"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(cert_row, max_size=8))
def test_any_certificate_file_claims_each_serial_once(conn: psycopg.Connection, rows) -> None:
    text = _csv(list(COLUMNS), rows)
    try:
        parsed = parse_certificates(text)
    except FactorFileError as exc:
        assert exc.problems and all(PROBLEM.match(p) for p in exc.problems), exc.problems
        return
    with conn.transaction(force_rollback=True):
        site = seed(conn)
        accepted = []
        for r in parsed:
            try:
                with conn.transaction():
                    service.add_certificates(
                        conn=conn,
                        site=site,
                        scheme=r.scheme,
                        serial_prefix=r.serial_prefix,
                        serial_first=r.serial_first,
                        serial_last=r.serial_last,
                        vintage_year=r.vintage_year,
                        period_start=r.period_start,
                        period_end=r.period_end,
                        reference=r.reference,
                        actor="t",
                    )
                accepted.append(r)
            except CarbonError as exc:
                assert "claimed already" in str(exc)
                assert any(
                    a.scheme == r.scheme
                    and a.serial_prefix == r.serial_prefix
                    and a.serial_first <= r.serial_last
                    and a.serial_last >= r.serial_first
                    for a in accepted
                )
        stored = conn.execute(
            "SELECT scheme, serial_prefix, serial_first, serial_last, mwh FROM carbon_instrument ORDER BY id"
        ).fetchall()
        assert len(stored) == len(accepted)
        for i, a in enumerate(stored):
            assert a[4] == a[3] - a[2] + 1
            for b in stored[i + 1 :]:
                assert not (a[0] == b[0] and a[1] == b[1] and a[2] <= b[3] and b[2] <= a[3])


def test_certificate_errors_name_line_and_field() -> None:
    text = _csv(
        list(COLUMNS),
        [
            ("GEC", "", "5", "3", "2025", "2025-01-01", "2026-01-01", "r"),
            ("GEC", "", "1", "2", "2025", "2025-01-01", "2026-01-01", "r"),
        ],
    )
    with pytest.raises(FactorFileError) as err:
        parse_certificates(text)
    assert err.value.problems == ["certificates.csv:2: serial_last: 3 is below serial_first 5"]
    assert parse_certificates(text.replace("5,3", "3,5"))[0].period_start == date(2025, 1, 1)


proc_code = st.sampled_from(["a", "b", "c", "d", "Bad Code", ""])
routing_spec = st.fixed_dictionaries(
    {
        "processes": st.lists(
            st.fixed_dictionaries(
                {
                    "code": proc_code,
                    "name": st.sampled_from(["涂布", "", "x"]),
                    "yield": st.floats(-0.5, 1.5),
                    "unit": st.sampled_from(["cell", "m"]),
                    "area": st.sampled_from([None, "coating"]),
                    "inputs": st.lists(
                        st.fixed_dictionaries({"process": proc_code, "quantity": st.floats(-1, 20)}), max_size=2
                    ),
                    "materials": st.lists(
                        st.fixed_dictionaries(
                            {
                                "code": st.sampled_from(["lfp", "cu"]),
                                "name": st.just("m"),
                                "quantity": st.floats(0, 5),
                                "unit": st.just("kg"),
                                "factor_kg_per_unit": st.floats(-1, 50),
                            }
                        ),
                        max_size=2,
                    ),
                }
            ),
            max_size=4,
        ),
        "product": st.fixed_dictionaries(
            {
                "name": st.just("P"),
                "cell_process": proc_code,
                "pack_process": proc_code,
                "cell_kwh": st.floats(-1, 2),
                "pack_kwh": st.floats(0, 20),
            }
        ),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=routing_spec)
def test_any_routing_is_refused_with_its_field_or_stored_and_ordered(conn: psycopg.Connection, spec) -> None:
    from pydantic import ValidationError

    from carbon.footprint import Routing, burdens

    try:
        routing = Routing.model_validate(spec)
    except ValidationError as exc:
        assert all(e["msg"] for e in exc.errors())
        return
    order = routing.order()
    for p in routing.processes:  # every input comes before the process that uses it
        assert all(order.index(i.process) < order.index(p.code) for i in p.inputs)
    with conn.transaction(force_rollback=True):
        site = seed(conn)
        service.set_routing(conn=conn, site=site, routing=routing, actor="t")
        back = service.get_routing(conn=conn, site_id=service.site_ref(conn=conn, code=site).id)
        assert back == routing
    # zero emissions: the burden is the materials alone, never negative
    vec = burdens(routing, {}, {})
    assert all(v >= 0 for b in vec.values() for v in b.values())
