"""The compliance overview (the regulator's view): emissions against limits today and this month from the stored
results, exceedances, treatment-plant and compliance alarms, hazardous waste, reports; each caller sees their
scope only (a regulator: the compliance areas of their sites)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from starlette.testclient import TestClient

from api.main import create_app
from compliance.config import ComplianceSection
from compliance.service import apply_compliance
from core.clock import FrozenClock
from core.model import Severity
from tests.api import alarm_world, hazwaste_world
from tests.api.conftest import OTHER, SITE, World, settings_for

pytestmark = pytest.mark.db
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 14, 30, tzinfo=TZ).astimezone(UTC)  # 14:30 in the site's zone
OUTFALLS = {
    "outfalls": [
        {
            "code": "ww-final",
            "site": SITE,
            "name": "污水总排口",
            "medium": "water",
            "regime": "indirect",
            "pollutants": [
                {"pollutant": "w01018", "point": "ww-01/cod_mg_l"},
                {"pollutant": "w01001", "point": "ww-01/ph_ph"},
            ],
            "permit": {"number": "P-001", "valid_from": "2024-01-01"},
        }
    ]
}
RESULT = (
    "INSERT INTO compliance_result (site_code, outfall, pollutant, averaging, period_start, value, n_valid, "
    "n_total, valid, limit_min, limit_max, source, exceeded) VALUES (%s, 'ww-final', %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, %s)"
)


def local(day: int, hour: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def overview(world: World) -> Iterator[World]:
    """The world with an outfall, a month of results, readings, alarms and hazardous waste; the app's clock at NOW."""
    hazwaste_world.seed(world.url)
    with psycopg.connect(world.url) as conn:
        apply_compliance(conn=conn, section=ComplianceSection.model_validate(OUTFALLS), source="test")
        cod = [
            (
                SITE,
                "w01018",
                "day",
                local(d),
                180.0 if d == 10 else (None if d == 12 else 60.0 + d),
                1440,
                1440,
                d != 12,
                None,
                150.0,
                "GB 30484-2013",
                d == 10,
            )
            for d in range(1, 15)
        ]
        cod.append(
            (SITE, "w01018", "day", local(31, month=5), 400.0, 1440, 1440, True, None, 150.0, "GB 30484-2013", True)
        )  # last month: not counted
        ph = [
            (
                SITE,
                "w01001",
                "hour",
                local(15, h),
                9.6 if h == 9 else 7.2,
                60,
                60,
                True,
                6.0,
                9.0,
                "GB 30484-2013",
                h == 9,
            )
            for h in range(14)
        ]
        ph.append((SITE, "w01001", "hour", local(15, 15), 9.9, 60, 60, True, 6.0, 9.0, "GB 30484-2013", True))
        ph.append((SITE, "w01001", "hour", local(14, 23), 9.5, 60, 60, True, 6.0, 9.0, "GB 30484-2013", True))
        ph.append((OTHER, "w01001", "hour", local(15, 1), 12.0, 60, 60, True, 6.0, 9.0, "GB 30484-2013", True))
        conn.cursor().executemany(RESULT, cod + ph)
        point = conn.execute(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = 'ww-01' AND p.key = 'cod_mg_l'"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, 71.5, 0), (%s, %s, 64.0, 0)",
            (NOW - timedelta(minutes=1), point, NOW - timedelta(minutes=5), point),
        )
        alarm_world.raise_alarm(
            conn,
            area="wastewater",
            device="ww-01",
            point="cod_mg_l",
            rule="compliance.exceedance",
            severity=Severity.HIGH,
            at=NOW - timedelta(hours=1),
        )
        alarm_world.raise_alarm(conn, rule="gas.h2", at=NOW - timedelta(hours=1))  # a safety alarm
        alarm_world.raise_alarm(
            conn,
            rule="hazwaste.capacity",
            device="gas-02",
            point="h2_ppm",
            severity=Severity.MEDIUM,
            at=NOW - timedelta(hours=1),
        )  # in a non-compliance area
        conn.commit()
    core, api = settings_for(world.url)
    with TestClient(create_app(core, api, clock=FrozenClock(NOW))) as client:
        yield World(world.url, client, world.ids, world.keys)


def _get(world: World, who: str, query: str = "") -> dict:
    r = world.client.get(f"/api/v1/compliance/overview{query}", headers=world.headers(who))
    assert r.status_code == 200, r.text
    return r.json()


def test_emissions_against_limits_today_and_this_month(overview: World) -> None:
    [site] = _get(overview, "regulator")["sites"]
    assert site["site"] == SITE and site["timezone"] == "Asia/Shanghai"
    # today and this month are the site's calendar
    assert (site["window"]["day_start"], site["window"]["month_start"]) == (
        "2026-06-15T00:00:00+08:00",
        "2026-06-01T00:00:00+08:00",
    )
    [outfall] = site["outfalls"]
    assert (outfall["code"], outfall["areas"], outfall["permit"]) == ("ww-final", ["wastewater"], "P-001")
    cod, ph = outfall["pollutants"]
    assert (cod["pollutant"], cod["averaging"], cod["limit_max"], cod["source"]) == (
        "w01018",
        "day",
        150.0,
        "GB 30484-2013",
    )
    assert cod["latest"]["value"] == 71.5  # the newest real-time value beside the limit
    assert cod["today"] == {"periods": 0, "valid": 0, "exceeded": 0, "max": None}  # today's day has not closed
    month = cod["month"]
    assert (month["periods"], month["valid"], month["exceeded"], month["max"]) == (14, 13, 1, 180.0)
    assert month["mean"] == pytest.approx((sum(60.0 + d for d in range(1, 15) if d not in (10, 12)) + 180) / 13)
    assert cod["last_period"]["start"].startswith("2026-06-13T16:00") and cod["last_period"]["value"] == 74.0
    assert (ph["limit_min"], ph["limit_max"], ph["latest"]) == (6.0, 9.0, None)
    assert ph["today"] == {"periods": 14, "valid": 14, "exceeded": 1, "max": 9.6}  # 15:00 is not over yet
    assert (ph["month"]["periods"], ph["month"]["exceeded"]) == (15, 2)  # yesterday 23:00 as well
    assert site["exceedances_total"] == 3
    assert [(e["pollutant"], e["value"]) for e in site["exceedances"]] == [
        ("w01001", 9.6),
        ("w01001", 9.5),
        ("w01018", 180.0),
    ]


def test_each_caller_sees_their_scope(overview: World) -> None:
    regulator = _get(overview, "regulator")["sites"][0]
    assert [a["rule"] for a in regulator["alarms"]] == ["compliance.exceedance"]  # not the formation area's
    assert regulator["hazwaste"]["containers_in_storage"] == 1 and regulator["hazwaste"]["kg_in_storage"] == 40
    assert regulator["hazwaste"]["open_manifests"] == {"draft": 1}
    assert regulator["hazwaste"]["containers_over_limit"] == 0 and regulator["hazwaste"]["oldest_days"] > 160
    assert regulator["reports"] == []
    manager = _get(overview, "ehs_manager")["sites"][0]
    assert sorted(a["rule"] for a in manager["alarms"]) == ["compliance.exceedance", "hazwaste.capacity"]
    operator = _get(overview, "operator")["sites"][0]
    assert operator["reports"] is None and operator["outfalls"][0]["code"] == "ww-final"  # no archive permission
    assert _get(overview, "other_site")["sites"][0]["site"] == OTHER  # never s1's data
    assert _get(overview, "other_site")["sites"][0]["outfalls"] == []
    r = overview.client.get(f"/api/v1/compliance/overview?site={OTHER}", headers=overview.headers("regulator"))
    assert r.status_code == 403 and "not in your scope" in r.json()["detail"]
    assert overview.client.get("/api/v1/compliance/overview", headers=overview.headers("device")).status_code == 403


def test_a_regulator_does_not_see_an_outfall_outside_compliance_areas(overview: World) -> None:
    section = {
        "outfalls": [
            *OUTFALLS["outfalls"],
            {
                "code": "lab-vent",
                "site": SITE,
                "name": "化成排气",
                "medium": "air",
                "regime": "stack",
                "pollutants": [{"pollutant": "a24088", "point": "gas-01/h2_ppm"}],
            },
        ]
    }
    with psycopg.connect(overview.url) as conn:
        apply_compliance(conn=conn, section=ComplianceSection.model_validate(section), source="test")
    assert [o["code"] for o in _get(overview, "regulator")["sites"][0]["outfalls"]] == ["ww-final"]
    assert [o["code"] for o in _get(overview, "ehs_manager")["sites"][0]["outfalls"]] == ["ww-final", "lab-vent"]


def test_looking_back_to_a_day_of_the_month(overview: World) -> None:
    [site] = _get(overview, "regulator", "?day=2026-06-10")["sites"]
    assert site["window"]["day_start"] == "2026-06-10T00:00:00+08:00"
    cod, ph = site["outfalls"][0]["pollutants"]
    assert cod["today"] == {"periods": 1, "valid": 1, "exceeded": 1, "max": 180.0}  # the 10th's daily mean
    assert (cod["month"]["periods"], cod["latest"]) == (10, None)  # no reading by then
    assert ph["today"]["periods"] == 0 and site["exceedances_total"] == 1
    future = _get(overview, "regulator", "?day=2026-07-01")["sites"][0]  # not over yet: as of now
    assert future["window"]["day_start"] == "2026-06-15T00:00:00+08:00"
    for bad in ("15.6.2026", "9999-12-31", "1999-12-31"):
        r = overview.client.get(f"/api/v1/compliance/overview?day={bad}", headers=overview.headers("regulator"))
        assert r.status_code == 422, bad
