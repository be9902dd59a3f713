"""``/api/v1/reports``: a run in the background with its progress record, the archive within the caller's scope
(regulators see reports of their compliance areas only), byte-for-byte downloads that are audited, and the check
of an uploaded file against the archive."""

from __future__ import annotations

import hashlib

import pytest

from tests.api.conftest import SITE, World
from tests.reports import world as month

pytestmark = pytest.mark.db


def run(world: World, who: str, **body) -> dict:
    made = world.client.post("/api/v1/reports/runs", headers=world.headers(who), json=body)
    assert made.status_code == 202, made.text
    assert made.json()["status"] == "queued"
    got = world.client.get(f"/api/v1/reports/runs/{made.json()['id']}", headers=world.headers(who))
    assert got.status_code == 200
    return got.json()


def test_run_download_and_verify_as_manager_and_regulator(world: World) -> None:
    ids = month.build(world.url)
    whole = run(world, "ehs_manager", kind="alarm_month", site=SITE, month="2026-03")
    assert (whole["status"], whole["progress"], whole["step"]) == ("done", 1.0, "done")
    assert [f["format"] for f in whole["files"]] == ["pdf", "xlsx", "csv"]
    pdf = whole["files"][0]
    got = world.client.get(f"/api/v1/reports/{pdf['id']}/download", headers=world.headers("ehs_manager"))
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(got.content).hexdigest() == pdf["sha256"] == got.headers["x-content-sha256"]
    assert pdf["filename"] in got.headers["content-disposition"]
    with world.db() as conn:
        actor, detail = conn.execute(
            "SELECT actor, detail FROM audit_entry WHERE action = 'export.report.download' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert actor == "user:ehs_manager" and detail["sha256"] == pdf["sha256"]

    ww = run(world, "admin", kind="alarm_month", site=SITE, month="2026-03", areas=["wastewater"], formats=["csv"])
    ww_file = ww["files"][0]
    assert ww_file["areas"] == ["wastewater"]
    # the regulator sees the wastewater report, not the whole-site one (it has the formation area's alarms)
    listed = world.client.get("/api/v1/reports", headers=world.headers("regulator")).json()
    assert [f["id"] for f in listed] == [ww_file["id"]]
    assert world.client.get(f"/api/v1/reports/{pdf['id']}", headers=world.headers("regulator")).status_code == 404
    assert (
        world.client.get(f"/api/v1/reports/{pdf['id']}/download", headers=world.headers("regulator")).status_code == 404
    )
    mine = world.client.get(f"/api/v1/reports/{ww_file['id']}/download", headers=world.headers("regulator"))
    assert mine.status_code == 200 and "污水站" in mine.content.decode("utf-8-sig")
    # the regulator checks the file they were sent, and a copy with one byte changed
    ok = world.client.post(
        "/api/v1/reports/verify", headers=world.headers("regulator"), files={"file": ("r.csv", mine.content)}
    ).json()
    assert ok["valid"] is True and ok["report"]["id"] == ww_file["id"]
    changed = bytearray(mine.content)
    changed[10] ^= 0x20
    bad = world.client.post(
        f"/api/v1/reports/verify?report_id={ww_file['id']}",
        headers=world.headers("regulator"),
        files={"file": ("r.csv", bytes(changed))},
    ).json()
    assert bad["valid"] is False and bad["report"] is None and bad["differs"]["first_byte"] == 10
    # a valid file outside the regulator's scope: valid, but the report is not shown to them
    other = world.client.post(
        "/api/v1/reports/verify", headers=world.headers("regulator"), files={"file": ("r.pdf", got.content)}
    ).json()
    assert other["valid"] is True and other["report"] is None
    # an incident report of an alarm
    incident = run(world, "ehs_manager", kind="incident", alarm_id=ids["a"], formats=["pdf"], lang="en")
    assert incident["status"] == "done" and incident["files"][0]["kind"] == "incident"


def test_run_requests_are_checked(world: World) -> None:
    post = lambda body, who="ehs_manager": world.client.post(  # noqa: E731
        "/api/v1/reports/runs", headers=world.headers(who), json=body
    )
    assert post({"kind": "nope", "site": SITE, "month": "2026-03"}).status_code == 422
    assert post({"kind": "alarm_month", "site": SITE}).status_code == 422
    assert post({"kind": "alarm_month", "site": SITE, "month": "2026-13"}).status_code == 422
    assert (
        post({"kind": "alarm_month", "site": SITE, "month": "2026-03", "since": "2026-03-01T00:00:00Z"}).status_code
        == 422
    )
    assert post({"kind": "alarm_month", "site": "s2", "month": "2026-03"}).status_code == 403  # not their site
    assert post({"kind": "alarm_month", "site": SITE, "month": "2026-03", "areas": ["nowhere"]}).status_code == 422
    assert post({"kind": "incident", "alarm_id": 999999}).status_code == 404
    assert world.client.get("/api/v1/reports/runs/999999", headers=world.headers("admin")).status_code == 404
    kinds = world.client.get("/api/v1/reports/kinds", headers=world.headers("regulator")).json()
    assert {k["name"] for k in kinds} == {
        "incident",
        "alarm_month",
        "interlocks",
        "device_health",
        "carbon_inventory",
        "hazwaste_month",
        "hazwaste_year",
        "energy_month",
        "compliance_day",
        "compliance_month",
    }


def test_a_regulator_sees_no_energy_report_even_of_a_compliance_area(world: World) -> None:
    month.build(world.url)
    energy = run(world, "admin", kind="energy_month", site=SITE, month="2026-03", areas=["wastewater"], formats=["csv"])
    alarms = run(world, "admin", kind="alarm_month", site=SITE, month="2026-03", areas=["wastewater"], formats=["csv"])
    assert energy["status"] == alarms["status"] == "done", (energy, alarms)
    energy_file, alarms_file = energy["files"][0], alarms["files"][0]
    assert energy_file["areas"] == alarms_file["areas"] == ["wastewater"]
    # energy is not compliance data: the regulator's archive has the alarm report of the same area only
    listed = world.client.get("/api/v1/reports", headers=world.headers("regulator")).json()
    assert [f["id"] for f in listed] == [alarms_file["id"]]
    for path in (f"/api/v1/reports/{energy_file['id']}", f"/api/v1/reports/{energy_file['id']}/download"):
        assert world.client.get(path, headers=world.headers("regulator")).status_code == 404
    # people who read energy see both
    seen = {f["id"] for f in world.client.get("/api/v1/reports", headers=world.headers("ehs_manager")).json()}
    assert {energy_file["id"], alarms_file["id"]} <= seen
