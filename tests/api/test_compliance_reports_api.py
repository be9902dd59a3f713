"""The compliance reports through ``/api/v1/reports``: an EHS manager runs the monthly report for the whole site;
it covers the outfalls' areas only, so the regulator finds it in their archive and downloads it, in Chinese."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.api.conftest import SITE, World
from tests.api.test_compliance_api import overview  # noqa: F401 - the fixture
from tests.api.test_reports_api import run

pytestmark = pytest.mark.db


def test_the_regulator_downloads_the_monthly_compliance_report(overview: World) -> None:  # noqa: F811
    kinds = {
        k["name"]: k for k in overview.client.get("/api/v1/reports/kinds", headers=overview.headers("regulator")).json()
    }
    assert kinds["compliance_month"]["title"] == "环保合规月报" and kinds["compliance_day"]["subject"] == "period"
    made = run(overview, "ehs_manager", kind="compliance_month", site=SITE, month="2026-06", formats=["xlsx"])
    assert made["status"] == "done", made["error"]
    [xlsx] = made["files"]
    assert xlsx["areas"] == ["wastewater"]  # the outfall's area, not the whole site
    listed = overview.client.get("/api/v1/reports", headers=overview.headers("regulator")).json()
    assert [f["id"] for f in listed] == [xlsx["id"]]
    got = overview.client.get(f"/api/v1/reports/{xlsx['id']}/download", headers=overview.headers("regulator"))
    assert got.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(got.content))
    rows = list(book["exceedances"].iter_rows(values_only=True))[1:]
    # the job's stored verdicts of June: COD day 10 (180 against 150), pH 14 June 23:00 and 15 June 09:00
    assert sorted(r[4] for r in rows) == [9.5, 9.6, 180.0]
    assert next(r for r in rows if r[4] == 180.0)[6] == pytest.approx(1.2)
    rect = list(book["rectification"].iter_rows(values_only=True))[1:]
    # three exceedances; missing data: pH all month (to now), COD before 14:25 and between 14:25 and 14:29
    assert sorted(r[0] for r in rect) == ["无效数据"] * 3 + ["超标"] * 3
    assert {r[6] for r in rect} == {"整改说明待填写"}
    # the daily report by a day of the site's calendar
    daily = run(overview, "ehs_manager", kind="compliance_day", site=SITE, day="2026-06-14", formats=["csv"])
    assert daily["status"] == "done", daily["error"]
    assert (daily["params"]["since"], daily["params"]["until"]) == (
        "2026-06-13T16:00:00+00:00",
        "2026-06-14T16:00:00+00:00",
    )
    both = overview.client.post(
        "/api/v1/reports/runs",
        headers=overview.headers("ehs_manager"),
        json={"kind": "compliance_day", "site": SITE, "day": "2026-06-14", "month": "2026-06"},
    )
    assert both.status_code == 422 and "not both" in both.text
    # a regulator may not run one (existing permissions)
    r = overview.client.post(
        "/api/v1/reports/runs",
        headers=overview.headers("regulator"),
        json={"kind": "compliance_day", "site": SITE, "since": "2026-06-14T16:00:00Z", "until": "2026-06-15T16:00:00Z"},
    )
    assert r.status_code == 403
