"""Alarm routes against real alarms raised by the alarm engine: list and filters, detail with timeline and
response plan, acknowledge/shelve/comment/reset/out of service with version conflicts, scope, audit, live feed."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest

from core.model import Severity
from tests.api.alarm_world import alarm_in_state, clear_alarm, configure, raise_alarm
from tests.api.conftest import OTHER, SITE, World
from tests.api.test_ws import expect, start_live  # noqa: F401 - start_live is a fixture used below

pytestmark = pytest.mark.db
BASE = "/api/v1/alarms"


@pytest.fixture
def alarms(world: World) -> dict[str, int]:
    """A high alarm and a critical one in s1/formation, a medium one in s1/wastewater, one in s2."""
    with psycopg.connect(world.url) as conn:
        configure(conn)
        ids = {
            "high": raise_alarm(conn),
            "critical": raise_alarm(conn, device="gas-02", point="co_ppm", rule="gas.co", severity=Severity.CRITICAL),
            "water": raise_alarm(
                conn, area="wastewater", device="ww-01", point="ph_ph", rule="water.ph", severity=Severity.MEDIUM
            ),
            "other": raise_alarm(conn, site=OTHER),
        }
        conn.commit()
    return ids


def _get(world: World, who: str, path: str = "", **params):
    return world.client.get(BASE + path, params=params, headers=world.headers(who))


def _post(world: World, who: str, path: str, body: dict | None = None):
    return world.client.post(BASE + path, json=body, headers=world.headers(who))


def _audit(world: World, action: str) -> list[tuple[str, str]]:
    with world.db() as conn:
        return conn.execute(
            "SELECT actor, target FROM audit_entry WHERE action = %s ORDER BY seq", (action,)
        ).fetchall()


def test_list_is_a_bare_list_in_scope_ordered_and_filtered(world: World, alarms: dict[str, int]) -> None:
    response = _get(world, "operator")
    assert response.status_code == 200
    items = response.json()
    assert isinstance(items, list)
    # s1 only (the operator's site), highest priority first
    assert [a["id"] for a in items] == [alarms["critical"], alarms["high"], alarms["water"]]
    first = items[0]
    assert (first["state"], first["state_code"], first["needs_ack"], first["annunciated"]) == (
        "active_unacked",
        "UNACK",
        True,
        True,
    )
    assert first["priority_label"] == "紧急" and first["state_label_en"] == "Active, unacknowledged"
    assert isinstance(first["version"], int) and first["version"] > 0
    assert [a["id"] for a in _get(world, "operator", min_priority=4).json()] == [alarms["critical"]]
    assert [a["id"] for a in _get(world, "operator", rule="gas.h2").json()] == [alarms["high"]]
    assert [a["id"] for a in _get(world, "operator", area="wastewater").json()] == [alarms["water"]]
    assert _get(world, "operator", state=["active_acked"]).json() == []
    assert len(_get(world, "operator", state=["active_acked", "active_unacked"]).json()) == 3
    assert [a["id"] for a in _get(world, "operator", limit=1, offset=1).json()] == [alarms["high"]]
    assert _get(world, "operator", site=OTHER).status_code == 403  # named a site outside the scope
    assert {a["id"] for a in _get(world, "admin").json()} == set(alarms.values())
    assert _get(world, "operator", state=["nonsense"]).status_code == 422


def test_closed_alarms_only_when_asked(world: World, alarms: dict[str, int]) -> None:
    with psycopg.connect(world.url) as conn:
        clear_alarm(conn, alarms["high"])
        conn.commit()
    _post(world, "operator", f"/{alarms['high']}/ack")
    assert alarms["high"] not in [a["id"] for a in _get(world, "operator").json()]
    closed = [a for a in _get(world, "operator", open="false").json() if a["id"] == alarms["high"]]
    assert closed and closed[0]["state"] == "normal" and closed[0]["closed_at"] is not None


def test_detail_has_timeline_commands_notifications_and_plan(world: World, alarms: dict[str, int]) -> None:
    detail = _get(world, "viewer", f"/{alarms['high']}").json()
    assert [e["kind"] for e in detail["events"]] == ["raise", "command"]
    assert detail["version"] == detail["events"][-1]["id"]
    assert [(c["device"], c["action"], c["status"]) for c in detail["commands"]] == [
        ("gas-02", "alarm.sound", "pending")
    ]
    assert "payload" not in detail["commands"][0]  # the signed command is never shown
    assert [n["kind"] for n in detail["notifications"]] == ["plan"]
    assert all("last_error" not in n for n in detail["notifications"])
    plan = detail["plan"]
    assert (plan["level"], plan["name_en"], plan["evacuation"]["en"], plan["evacuation"]["assembly_point"]) == (
        2,
        "Formation plan",
        "Leave by the east corridor",
        "1 号集合点",
    )
    assert plan["interlocks"] == [{"device": "gas-02", "action": "alarm.sound", "params": {}}]
    assert plan["operator_action_en"] == "Start the exhaust, look for the leak"
    # an alarm of an area without a plan
    assert _get(world, "viewer", f"/{alarms['water']}").json()["plan"] is None


def test_ack_checks_the_version_seen_and_the_state(world: World, alarms: dict[str, int]) -> None:
    alarm_id = alarms["high"]
    version = _get(world, "operator", f"/{alarm_id}").json()["version"]
    stale = _post(world, "operator", f"/{alarm_id}/ack", {"comment": "from the queue", "seen_version": version - 1})
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "alarm_changed" and body["alarm"]["id"] == alarm_id
    assert body["alarm"]["state"] == "active_unacked" and body["alarm"]["version"] == version
    assert _audit(world, "alarm.ack") == []  # nothing done

    done = _post(world, "operator", f"/{alarm_id}/ack", {"comment": "fan running", "seen_version": version})
    assert done.status_code == 200
    acked = done.json()
    assert (acked["state"], acked["acked_by"]) == ("active_acked", "user:operator")
    assert acked["version"] > version

    again = _post(world, "ehs_manager", f"/{alarm_id}/ack")
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition" and again.json()["alarm"]["state"] == "active_acked"
    # audited once, by the alarm engine, with the signed-in user as actor
    assert _audit(world, "alarm.ack") == [("user:operator", f"alarm:{alarm_id}")]


def test_ack_without_a_body(world: World, alarms: dict[str, int]) -> None:
    response = world.client.post(f"{BASE}/{alarms['high']}/ack", headers=world.headers("operator"))
    assert response.status_code == 200 and response.json()["state"] == "active_acked"


def test_shelve_needs_a_reason_and_a_bounded_duration(world: World, alarms: dict[str, int]) -> None:
    path = f"/{alarms['high']}/shelve"
    missing = _post(world, "operator", path, {"minutes": 30})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["body.reason"]
    blank = _post(world, "operator", path, {"reason": "   ", "minutes": 30})
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "body.reason"
    too_long = _post(world, "operator", path, {"reason": "sensor swap", "minutes": 8 * 60 + 1})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "body.minutes"
    shelved = _post(world, "operator", path, {"reason": "sensor swap", "minutes": 30})
    assert shelved.status_code == 200
    assert (shelved.json()["state"], shelved.json()["shelve_reason"]) == ("shelved", "sensor swap")
    assert not shelved.json()["annunciated"]
    back = _post(world, "operator", f"/{alarms['high']}/unshelve", {"comment": "sensor back"})
    assert back.status_code == 200 and back.json()["state"] == "active_unacked"
    assert [a for a, _ in _audit(world, "alarm.shelve")] == ["user:operator"]


def test_a_critical_alarm_is_shelved_by_a_manager_only(world: World, alarms: dict[str, int]) -> None:
    body = {"reason": "known fault", "minutes": 10}
    refused = _post(world, "operator", f"/{alarms['critical']}/shelve", body)
    assert refused.status_code == 403 and "EHS manager" in refused.json()["detail"]
    assert _post(world, "ehs_manager", f"/{alarms['critical']}/shelve", body).status_code == 200


def test_comment_answers_the_event_and_is_audited(world: World, alarms: dict[str, int]) -> None:
    response = _post(world, "operator", f"/{alarms['high']}/comment", {"text": "checked on site, no leak"})
    assert response.status_code == 201
    event = response.json()
    assert (event["kind"], event["actor"], event["cause"], event["caused_by"]) == (
        "comment",
        "user:operator",
        "checked on site, no leak",
        "user:operator",
    )
    assert _get(world, "operator", f"/{alarms['high']}").json()["version"] == event["id"]
    assert _audit(world, "alarm.comment") == [("user:operator", f"alarm:{alarms['high']}")]
    assert _post(world, "operator", f"/{alarms['high']}/comment", {"text": ""}).status_code == 422


def test_reset_out_of_service_and_return(world: World) -> None:
    with psycopg.connect(world.url) as conn:
        configure(conn)
        conn.commit()
    latched = alarm_in_state(world.url, "latched_acked")
    assert _get(world, "operator", f"/{latched}").json()["state"] == "latched_acked"
    reset = _post(world, "operator", f"/{latched}/reset")
    assert reset.status_code == 200 and reset.json()["state"] == "normal"
    assert _post(world, "operator", f"/{latched}/reset").json()["code"] == "illegal_transition"

    active = alarm_in_state(world.url, "active_unacked")
    assert (
        _post(world, "operator", f"/{active}/out-of-service", {"reason": "calibration", "permit": "PTW-9"}).status_code
        == 403
    )  # managers only
    missing = _post(world, "ehs_manager", f"/{active}/out-of-service", {"reason": "calibration"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.permit"
    oos = _post(world, "ehs_manager", f"/{active}/out-of-service", {"reason": "calibration", "permit": "PTW-9"})
    assert oos.status_code == 200 and (oos.json()["state"], oos.json()["oos_permit"]) == ("out_of_service", "PTW-9")
    back = _post(world, "ehs_manager", f"/{active}/return-to-service", {"seen_version": oos.json()["version"]})
    assert back.status_code == 200 and back.json()["state"] == "active_unacked"


def test_other_sites_and_non_compliance_areas_are_invisible(world: World, alarms: dict[str, int]) -> None:
    assert _get(world, "operator", f"/{alarms['other']}").status_code == 404
    assert _post(world, "operator", f"/{alarms['other']}/ack").status_code == 404
    assert _get(world, "other_site", f"/{alarms['high']}").status_code == 404
    assert _get(world, "regulator", f"/{alarms['high']}").status_code == 404
    assert _get(world, "regulator", f"/{alarms['water']}").status_code == 200
    assert [a["id"] for a in _get(world, "regulator").json()] == [alarms["water"]]
    assert _get(world, "regulator", area="formation").json() == []
    assert _get(world, "operator", "/999999").status_code == 404


def test_kpis_within_scope(world: World, alarms: dict[str, int]) -> None:
    kpi = _get(world, "operator", "/kpi")
    assert kpi.status_code == 200
    assert kpi.json()["site"] == SITE and kpi.json()["annunciated"] == 3
    assert kpi.json()["targets"]["alarms_per_day"]["acceptable"] == 150
    assert _get(world, "admin", "/kpi").json()["annunciated"] == 4
    assert _get(world, "operator", "/kpi", site=OTHER).status_code == 403
    assert _get(world, "regulator", "/kpi").status_code == 403
    assert _get(world, "regulator", "/kpi", area="wastewater").json()["annunciated"] == 1
    assert (
        _get(world, "operator", "/kpi", since="2026-01-01T00:00:00Z", until="2025-01-01T00:00:00Z").status_code == 422
    )


def test_the_live_feed_announces_an_ack_made_through_the_api(start_live) -> None:  # noqa: F811
    live = start_live()
    with psycopg.connect(live.url) as conn:
        configure(conn)
        alarm_id = raise_alarm(conn)
        conn.commit()
    base = live.ws_url.replace("ws://", "http://").removesuffix("/api/v1/ws")
    with live.client("viewer") as ws:
        ws.send(json.dumps({"type": "subscribe", "alarms": [SITE]}))
        expect(ws, "subscribed")
        response = httpx.post(
            f"{base}{BASE}/{alarm_id}/ack",
            json={"comment": "on my way"},
            headers={"Authorization": f"Bearer {live.token('operator')}"},
            timeout=30,
        )
        assert response.status_code == 200
        event = expect(ws, "alarm")["event"]
        assert (event["alarm_id"], event["kind"], event["state"]) == (alarm_id, "ack", "active_acked")
        assert event["event_id"] == response.json()["version"]
