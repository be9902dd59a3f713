"""``/api/v1/reports/schedules``: create, list, replace and delete report schedules (audited, within the caller's
sites); schedules kept by the plant file are listed but refused for changes (409); bad bodies are 422."""

from __future__ import annotations

import pytest

from reports import schedules
from tests.api.conftest import SITE, World

pytestmark = pytest.mark.db
BODY = {
    "name": "api-health",
    "kind": "device_health",
    "site": SITE,
    "cadence": "weekly",
    "time": "07:15",
    "grace_minutes": 45,
    "areas": ["wastewater"],
    "language": "en",
    "formats": ["xlsx", "csv"],
    "recipients": ["ops-mail:ehs@example.com", "ding"],
}


def test_schedules_round_trip_through_the_api(world: World) -> None:
    headers = world.headers("ehs_manager")
    made = world.client.post("/api/v1/reports/schedules", headers=headers, json=BODY)
    assert made.status_code == 201, made.text
    got = made.json()
    assert {k: got[k] for k in BODY} == {**BODY, "time": "07:15:00"}
    assert (got["managed_by"], got["enabled"], got["created_by"]) == ("api", True, "user:ehs_manager")
    assert world.client.post("/api/v1/reports/schedules", headers=headers, json=BODY).status_code == 409

    listed = world.client.get("/api/v1/reports/schedules", headers=headers).json()
    assert [s["name"] for s in listed] == ["api-health"]
    assert world.client.get("/api/v1/reports/schedules", headers=world.headers("operator")).status_code == 403

    body = {k: v for k, v in BODY.items() if k != "name"} | {"cadence": "monthly", "recipients": []}
    put = world.client.put("/api/v1/reports/schedules/api-health", headers=headers, json=body)
    assert put.status_code == 200, put.text
    assert (put.json()["cadence"], put.json()["recipients"]) == ("monthly", [])
    with world.db() as conn:
        row = conn.execute("SELECT every, deliver_to FROM report_schedule WHERE name = 'api-health'").fetchone()
        audits = conn.execute(
            "SELECT action, actor FROM audit_entry WHERE target = 'report_schedule:api-health' ORDER BY seq"
        ).fetchall()
    assert row == ("monthly", [])

    wrong = {**body, "kind": "incident"}  # an incident report is scheduled after_incident
    assert world.client.put("/api/v1/reports/schedules/api-health", headers=headers, json=wrong).status_code == 422
    bad_time = {**body, "time": "24:30"}
    assert world.client.put("/api/v1/reports/schedules/api-health", headers=headers, json=bad_time).status_code == 422
    assert world.client.delete("/api/v1/reports/schedules/api-health", headers=headers).status_code == 204
    assert world.client.delete("/api/v1/reports/schedules/api-health", headers=headers).status_code == 404
    assert [a for a, _ in audits] == ["config.report_schedule.put", "config.report_schedule.put"]
    assert {actor for _, actor in audits} == {"user:ehs_manager"}


def test_the_plant_files_schedules_are_read_only_here(world: World) -> None:
    with world.db() as conn, conn.transaction():
        schedules.put_schedule(
            conn,
            spec=schedules.ScheduleSpec("from-file", "alarm_month", SITE, "monthly", ("pdf",), managed_by="config"),
            actor="system:config",
        )
    headers = world.headers("admin")
    (listed,) = [s for s in world.client.get("/api/v1/reports/schedules", headers=headers).json()]
    assert (listed["name"], listed["managed_by"], listed["cadence"]) == ("from-file", "config", "monthly")
    body = {k: v for k, v in BODY.items() if k != "name"}
    put = world.client.put("/api/v1/reports/schedules/from-file", headers=headers, json=body)
    assert put.status_code == 409 and "plant file" in put.text
    assert world.client.delete("/api/v1/reports/schedules/from-file", headers=headers).status_code == 409
    # another site's administrator does not see it, and may not create one for this site
    other = world.headers("other_site")
    assert world.client.get("/api/v1/reports/schedules", headers=other).json() == []
    assert world.client.put("/api/v1/reports/schedules/from-file", headers=other, json=body).status_code == 404
    assert world.client.post("/api/v1/reports/schedules", headers=other, json=BODY).status_code == 403
