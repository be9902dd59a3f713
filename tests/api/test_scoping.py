"""Issue 12 item 4: the safety configuration, the audit record, link acknowledgements and notification
recipients stay within the caller's (or recipient's) sites and processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.notifications import links, outbox
from api import users
from api.policy import Role, console
from tests.api import alarm_world
from tests.api.conftest import OTHER, PASSWORD, SECRET, SITE, World

pytestmark = pytest.mark.db
API = "/api/v1"


@pytest.fixture
def configured(world: World) -> World:
    world.ids.update(alarm_world.seed(world.url))
    return world


def _config(w: World, who: str) -> dict:
    response = w.client.get(f"{API}/alarm-config", headers=w.headers(who))
    assert response.status_code == 200
    return response.json()["body"]


def test_the_alarm_configuration_shows_each_caller_their_sites_only(configured: World) -> None:
    w = configured
    everything = _config(w, "admin")
    assert {(a["site"], a["device"]) for a in everything["actuators"]} == {(SITE, "gas-02"), (OTHER, "gas-01")}
    viewer = _config(w, "viewer")  # s1 only
    assert [(a["site"], a["device"]) for a in viewer["actuators"]] == [(SITE, "gas-02")]
    assert [p["site"] for p in viewer["response_plans"]] == [SITE]
    other = _config(w, "other_site")  # an administrator of s2 only
    assert [(a["site"], a["device"]) for a in other["actuators"]] == [(OTHER, "gas-01")]
    assert other["response_plans"] == []
    regulator = _config(w, "regulator")  # s1, compliance processes: not formation
    assert regulator["actuators"] == [] and regulator["response_plans"] == []
    assert regulator["alarms"]["rules"] == {}  # gas.h2/gas.latch watch formation only
    old = w.client.get(f"{API}/alarm-config/versions/{w.ids['alarm_config']}", headers=w.headers("other_site"))
    assert old.json()["body"]["response_plans"] == []


def test_the_rule_set_shows_the_rules_that_watch_the_callers_points(configured: World) -> None:
    w = configured

    def ids(who: str, **params) -> set[str]:
        return {r["id"] for r in w.client.get(f"{API}/rules", params=params, headers=w.headers(who)).json()["rules"]}

    assert ids("admin") == ids("viewer") == {"gas.h2", "gas.co", "gas.latch", "water.ph"}
    assert ids("regulator") == {"water.ph"}  # the thresholds of compliance points only
    assert ids("other_site") == {"gas.h2", "gas.co", "gas.latch"}  # s2 has no pH meter
    assert ids("admin", site=OTHER) == {"gas.h2", "gas.co", "gas.latch", "water.ph"}  # select has no site
    refused = w.client.get(f"{API}/rules", params={"site": OTHER}, headers=w.headers("viewer"))
    assert refused.status_code == 403 and "scope" in refused.json()["detail"]


def test_audit_entries_carry_their_site_and_reads_follow_scope(configured: World) -> None:
    w = configured
    with psycopg.connect(w.url) as conn:
        users.create_user(
            conn=conn,
            actor=console("test"),
            username="auditor",
            role=Role.REGULATOR,
            sites=[],
            all_sites=True,
            password=PASSWORD,
        )
        water = alarm_world.raise_alarm(conn, area="wastewater", device="ww-01", point="ph_ph", rule="water.ph")
        conn.commit()
    for alarm_id in (w.ids["alarm"], water):
        assert w.client.post(f"{API}/alarms/{alarm_id}/ack", json={}, headers=w.headers("operator")).status_code == 200
    with w.db() as conn:
        rows = conn.execute("SELECT target, site, area FROM audit_entry WHERE action = 'alarm.ack' ORDER BY seq")
        assert rows.fetchall() == [
            (f"alarm:{w.ids['alarm']}", SITE, "formation"),
            (f"alarm:{water}", SITE, "wastewater"),
        ]

    def acks(who: str) -> set[str]:
        items = w.client.get(f"{API}/audit", params={"action": "alarm.ack"}, headers=w.headers(who)).json()["items"]
        return {e["target"] for e in items}

    assert acks("ehs_manager") == {f"alarm:{w.ids['alarm']}", f"alarm:{water}"}  # s1 manager: both (was none)
    assert acks("auditor") == {f"alarm:{water}"}  # a regulator of every site: compliance areas only
    assert acks("regulator") == {f"alarm:{water}"}
    assert acks("other_site") == set()  # an administrator of s2 only


def test_a_link_acknowledges_only_for_a_recipient_of_the_alarms_site(configured: World) -> None:
    w = configured
    now = datetime.now(UTC)
    with psycopg.connect(w.url) as conn:
        theirs = alarm_world.raise_alarm(conn, site=OTHER, area="formation", device="gas-01", point="h2_ppm")
        conn.commit()
    to_operator = links.make(
        SECRET, alarm_id=theirs, user_id=w.ids["user:operator"], now=now, ttl=timedelta(minutes=30)
    )  # an operator of s1, an alarm of s2
    assert w.client.get(f"{API}/links/{to_operator}").json()["can_ack"] is False
    refused = w.client.post(f"{API}/links/{to_operator}/ack", json={})
    assert refused.status_code == 403
    mine = links.make(
        SECRET, alarm_id=w.ids["alarm"], user_id=w.ids["user:operator"], now=now, ttl=timedelta(minutes=30)
    )
    assert w.client.post(f"{API}/links/{mine}/ack", json={}).status_code == 200


def test_recipients_must_hold_the_site_and_the_answer_does_not_enumerate_users(configured: World) -> None:
    w = configured
    roster = {
        "name": "day",
        "site": SITE,
        "role": "shift_leader",
        "shifts": [{"name": "day", "start": "08:00", "end": "20:00", "users": ["operator"]}],
    }
    assert w.client.put(f"{API}/rosters/day", json=roster, headers=w.headers("ehs_manager")).status_code == 200
    answers = []
    for name in ("other_site", "no-such-user"):  # one exists (in s2 only), one does not: the same answer
        body = {**roster, "shifts": [{**roster["shifts"][0], "users": ["operator", name]}]}
        refused = w.client.put(f"{API}/rosters/day", json=body, headers=w.headers("ehs_manager"))
        assert refused.status_code == 422
        answers.append(refused.json()["detail"].replace(name, "NAME"))
    assert answers[0] == answers[1]
    policy = {"name": "p", "site": SITE, "tiers": [{"after_s": 60, "users": ["other_site"]}]}
    assert (
        w.client.put(f"{API}/escalation-policies/p", json=policy, headers=w.headers("ehs_manager")).status_code == 422
    )
    plan_users = {
        **alarm_world.ALERTS,
        "response_plans": [
            {
                **alarm_world.ALERTS["response_plans"][0],
                "levels": [
                    {**alarm_world.ALERTS["response_plans"][0]["levels"][0], "notify": {"users": ["other_site"]}}
                ],
            }
        ],
    }
    refused = w.client.put(f"{API}/alarm-config", json=plan_users, headers=w.headers("admin"))
    assert refused.status_code == 422
    assert "body.response_plans.0.levels.0.notify.users" in str(refused.json())


def test_a_named_recipient_of_another_site_is_not_notified(configured: World) -> None:
    """At delivery: a roster or plan naming someone without the site (configured before this check) is skipped."""
    with psycopg.connect(configured.url) as conn:
        row = {"recipients": {"users": ["other_site", "operator", "admin"]}, "site": SITE, "area": "formation"}
        got = {r["id"] for r in outbox.recipients(conn, row, datetime.now(UTC))}
    assert got == {configured.ids["user:operator"], configured.ids["user:admin"]}
