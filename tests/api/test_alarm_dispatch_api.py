"""Commands, bypasses, drills, floods and the safety configuration over HTTP, against the real alarm engine."""

from __future__ import annotations

import copy

import psycopg
import pytest

from core.model import Severity
from tests.api import alarm_world
from tests.api.conftest import OTHER, SITE, World

pytestmark = pytest.mark.db
API = "/api/v1"


@pytest.fixture
def configured(world: World) -> World:
    with psycopg.connect(world.url) as conn:
        alarm_world.configure(conn)
        conn.commit()
    return world


def _audit(world: World, action: str) -> list[tuple[str, str]]:
    with world.db() as conn:
        return conn.execute(
            "SELECT actor, target FROM audit_entry WHERE action = %s ORDER BY seq", (action,)
        ).fetchall()


def _fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def test_a_manual_command_needs_a_reason_a_role_and_an_actuator(configured: World) -> None:
    w = configured
    body = {"site": SITE, "device": "gas-02", "action": "alarm.sound", "reason": "test the horn"}
    post = lambda who, b: w.client.post(f"{API}/commands", json=b, headers=w.headers(who))  # noqa: E731
    assert _fields(post("operator", {**body, "reason": " "})) == ["body.reason"]
    assert _fields(post("operator", {k: v for k, v in body.items() if k != "reason"})) == ["body.reason"]
    assert post("viewer", body).status_code == 403
    assert _fields(post("operator", {**body, "device": "gas-01"})) == ["body.device"]  # not an actuator
    assert _fields(post("operator", {**body, "action": "valve.close"})) == ["body.action"]
    assert post("operator", {**body, "site": OTHER}).status_code == 403
    created = post("operator", body)
    assert created.status_code == 201
    command = created.json()
    assert (command["status"], command["origin"], command["requested_by"], command["reason"]) == (
        "pending",
        "manual",
        "user:operator",
        "test the horn",
    )
    assert [e["status"] for e in command["events"]] == ["pending"] and "payload" not in command
    assert _audit(w, "command.issue") == [("user:operator", f"command:{command['id']}")]
    listed = w.client.get(
        f"{API}/commands", params={"device": "gas-02", "status": "pending"}, headers=w.headers("viewer")
    ).json()
    assert command["id"] in [c["id"] for c in listed]
    assert w.client.get(f"{API}/commands/{command['id']}", headers=w.headers("viewer")).status_code == 200
    # regulators see commands of compliance areas only; another site's administrator nothing of s1
    assert w.client.get(f"{API}/commands/{command['id']}", headers=w.headers("regulator")).status_code == 404
    assert w.client.get(f"{API}/commands", headers=w.headers("regulator")).json() == []
    assert w.client.get(f"{API}/commands/{command['id']}", headers=w.headers("other_site")).status_code == 404
    assert w.client.get(f"{API}/commands", params={"site": OTHER}, headers=w.headers("operator")).status_code == 403


def test_a_bypass_needs_two_different_people(configured: World) -> None:
    w = configured
    request = {"site": SITE, "device": "gas-02", "reason": "sensor replacement", "minutes": 90}
    created = w.client.post(f"{API}/bypasses", json=request, headers=w.headers("ehs_manager"))
    assert created.status_code == 201
    bypass = created.json()
    assert (bypass["status"], bypass["area"], bypass["requested_by"]) == ("requested", "formation", "user:ehs_manager")
    approve = f"{API}/bypasses/{bypass['id']}/approve"
    own = w.client.post(approve, headers=w.headers("ehs_manager"))
    assert own.status_code == 403 and "two different people" in own.json()["detail"]
    assert w.client.post(approve, headers=w.headers("operator")).status_code == 403  # role
    approved = w.client.post(approve, headers=w.headers("admin"))
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("active", "user:admin")
    assert w.client.post(approve, headers=w.headers("admin")).status_code == 409
    assert [b["id"] for b in w.client.get(f"{API}/bypasses", headers=w.headers("viewer")).json()] == [bypass["id"]]
    revoked = w.client.post(f"{API}/bypasses/{bypass['id']}/revoke", headers=w.headers("operator"))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert w.client.get(f"{API}/bypasses", headers=w.headers("viewer")).json() == []
    assert len(w.client.get(f"{API}/bypasses", params={"active": "false"}, headers=w.headers("viewer")).json()) == 1
    assert [a for a, _ in _audit(w, "bypass.request") + _audit(w, "bypass.approve") + _audit(w, "bypass.revoke")] == [
        "user:ehs_manager",
        "user:admin",
        "user:operator",
    ]
    too_long = w.client.post(f"{API}/bypasses", json={**request, "minutes": 25 * 60}, headers=w.headers("operator"))
    assert _fields(too_long) == ["body.minutes"]


def test_a_drill_runs_the_plan_on_simulated_devices_and_ends(configured: World) -> None:
    w = configured
    body = {"site": SITE, "area": "formation", "level": 2, "reason": "quarterly drill"}
    assert w.client.post(f"{API}/drills", json=body, headers=w.headers("operator")).status_code == 403
    assert _fields(w.client.post(f"{API}/drills", json={**body, "level": 1}, headers=w.headers("ehs_manager"))) == [
        "body.level"
    ]
    started = w.client.post(f"{API}/drills", json=body, headers=w.headers("ehs_manager"))
    assert started.status_code == 201
    drill = started.json()
    assert drill["drill"] and drill["rule"] == "drill" and drill["plan"]["level"] == 2
    assert [(c["device"], c["status"], c["drill"]) for c in drill["commands"]] == [("gas-02", "pending", True)]
    assert all(n["drill"] for n in drill["notifications"])
    assert [
        a["id"] for a in w.client.get(f"{API}/alarms", params={"drill": "true"}, headers=w.headers("viewer")).json()
    ] == [drill["id"]]
    ended = w.client.post(f"{API}/drills/{drill['id']}/end", headers=w.headers("ehs_manager"))
    assert ended.status_code == 200 and ended.json()["state"] == "normal"
    assert _audit(w, "drill.start") == [("user:ehs_manager", f"alarm:{drill['id']}")]


def test_a_flood_lists_its_alarms_with_the_first_out(configured: World) -> None:
    w = configured
    with psycopg.connect(w.url) as conn:
        first = alarm_world.raise_alarm(conn, point="p-0", severity=Severity.MEDIUM)
        for n in range(1, 12):
            alarm_world.raise_alarm(conn, point=f"p-{n}", severity=Severity.MEDIUM)
        conn.commit()
    floods = w.client.get(f"{API}/floods", params={"open": "true"}, headers=w.headers("viewer")).json()
    assert len(floods) == 1 and floods[0]["area"] == "formation" and floods[0]["first_alarm_id"] == first
    detail = w.client.get(f"{API}/floods/{floods[0]['id']}", headers=w.headers("viewer")).json()
    assert [a["id"] for a in detail["alarms"] if a["is_first_out"]] == [first]
    assert len(detail["alarms"]) >= 11
    assert w.client.get(f"{API}/floods/{floods[0]['id']}", headers=w.headers("regulator")).status_code == 404
    assert w.client.get(f"{API}/floods", headers=w.headers("regulator")).json() == []


def test_the_alarm_configuration_is_validated_versioned_and_audited(configured: World) -> None:
    w = configured
    current = w.client.get(f"{API}/alarm-config", headers=w.headers("viewer")).json()
    assert current["body"]["response_plans"][0]["name_en"] == "Formation plan"
    put = lambda who, body: w.client.put(f"{API}/alarm-config", json=body, headers=w.headers(who))  # noqa: E731
    bad = copy.deepcopy(alarm_world.ALERTS)
    bad["response_plans"][0]["levels"][0]["min_severity"] = "extreme"
    assert _fields(put("admin", bad)) == ["body.response_plans.0.levels.0.min_severity"]
    unknown = copy.deepcopy(alarm_world.ALERTS)
    unknown["response_plans"][0]["levels"][0]["interlocks"][0]["device"] = "fan-99"
    assert _fields(put("admin", unknown)) == ["body.response_plans.0.levels.0.interlocks.0.device"]
    assert put("ehs_manager", alarm_world.ALERTS).status_code == 403
    assert put("other_site", alarm_world.ALERTS).status_code == 403
    assert put("admin", alarm_world.ALERTS).json() == {"revision": current["revision"], "changed": False}
    changed = copy.deepcopy(alarm_world.ALERTS)
    changed["alarms"]["defaults"] = {"shelve_max_h": 2}
    applied = put("admin", changed).json()
    assert applied["changed"] and applied["revision"] > current["revision"]
    versions = w.client.get(f"{API}/alarm-config/versions", headers=w.headers("viewer")).json()
    assert [v["revision"] for v in versions] == [applied["revision"], current["revision"]]
    assert versions[0]["source"] == "api:user:admin"
    # one audit action for every application of the configuration (issue 18 item 5; was rule.alarm_config)
    assert _audit(w, "config.apply") == [("user:admin", f"alarm_config:{applied['revision']}")]
    with w.db() as conn:
        assert conn.execute("SELECT summary FROM config_revision ORDER BY id DESC LIMIT 1").fetchone()[0] == {
            "alarm_config_revision": applied["revision"]
        }
    # the new limit applies at once: shelving beyond 2 h is refused
    with psycopg.connect(w.url) as conn:
        alarm_id = alarm_world.raise_alarm(conn)
        conn.commit()
    too_long = w.client.post(
        f"{API}/alarms/{alarm_id}/shelve", json={"reason": "x", "minutes": 121}, headers=w.headers("operator")
    )
    assert _fields(too_long) == ["body.minutes"]


def test_the_rule_set_is_versioned_and_keeps_the_alarm_configuration_valid(configured: World) -> None:
    w = configured
    rules = w.client.get(f"{API}/rules", headers=w.headers("viewer")).json()
    assert {r["id"] for r in rules["rules"]} == {"gas.h2", "gas.co", "gas.latch", "water.ph"}
    fewer = {"rules": [r for r in alarm_world.RULES["rules"] if r["id"] != "gas.latch"]}
    refused = w.client.put(f"{API}/rules", json=fewer, headers=w.headers("admin"))
    assert _fields(refused) == ["alarm_config.alarms.rules.gas.latch"]  # still named by the alarm config
    more = {
        "rules": [
            *alarm_world.RULES["rules"],
            {
                "id": "gas.co2",
                "name": "CO2",
                "type": "limit",
                "select": {"key": "co_ppm", "site": SITE},
                "high": [{"at": 900, "severity": "low"}],
            },
        ]
    }
    applied = w.client.put(f"{API}/rules", json=more, headers=w.headers("admin")).json()
    assert applied["changed"] and applied["revision"] > rules["revision"]
    on_other = w.client.get(f"{API}/rules", params={"site": OTHER}, headers=w.headers("admin")).json()
    assert "gas.co2" not in {r["id"] for r in on_other["rules"]}
    # the filter names a site: only one of the caller's own (issue 12: it was not checked)
    assert w.client.get(f"{API}/rules", params={"site": OTHER}, headers=w.headers("viewer")).status_code == 403
    assert len(w.client.get(f"{API}/rules/versions", headers=w.headers("viewer")).json()) == 2
    assert _audit(w, "config.apply") == [("user:admin", f"rule_set:{applied['revision']}")]  # was rule.rule_set


def test_console_and_api_share_one_application_of_the_safety_configuration(configured: World) -> None:
    """``ehs config apply`` (cli.plantfile.apply_full) and ``PUT /alarm-config`` store the safety sections through
    one function (api.safety.apply_safety): the same documents give the same revisions, refusals say the same."""
    from alerts.config import AlertSection
    from api import safety
    from cli.plantfile import FullPlant, SafetySections, apply_full
    from core.plant import export_plant
    from detectors.specs import RuleSection

    w = configured
    changed = copy.deepcopy(alarm_world.ALERTS)
    changed["alarms"]["defaults"] = {"shelve_max_h": 3}
    applied = w.client.put(f"{API}/alarm-config", json=changed, headers=w.headers("admin")).json()
    assert applied["changed"]
    with psycopg.connect(w.url) as conn:
        full = FullPlant(export_plant(conn=conn), SafetySections.model_validate({**alarm_world.RULES, **changed}))
        summary = apply_full(conn=conn, full=full, source="plant.yaml")
        assert summary.rules_revision is None and summary.alarms_revision is None  # what the API stored
        fewer = RuleSection(
            rules=[r for r in RuleSection.model_validate(alarm_world.RULES).rules if r.id != "gas.latch"]
        )
        refused = safety.apply_safety(conn, actor="cli:test", source="test", rules=fewer)
        assert not refused.changed
        assert [loc for loc, _ in refused.problems] == [("alarm_config", "alarms", "rules", "gas.latch")]
        more = copy.deepcopy(changed)
        more["alarms"]["defaults"] = {"shelve_max_h": 4}
        console = safety.apply_safety(
            conn, actor="cli:test", source="plant.yaml", alarms=AlertSection.model_validate(more)
        )
        assert console.alarms_revision is not None and console.alarms_revision > applied["revision"]
        conn.commit()
    assert _audit(w, "config.apply") == [
        ("user:admin", f"alarm_config:{applied['revision']}"),
        ("cli:test", f"alarm_config:{console.alarms_revision}"),
    ]
