"""The alarm engine checks what the API used to (issue 18, item 4): the caller's scope (in SQL for lists) and
the version a person saw, under the alarm's lock; refusals are core.errors.DomainError with their status."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from alerts import flows, service
from alerts.models import Actor, AlarmChanged, Conflict, IllegalTransition, NotFound, PermissionDenied
from alerts.notifications import link_access
from alerts.notifications.links import Link
from core import errors
from core.db import fetch_one
from core.model import Severity
from core.scope import CodeScope, check_site, resolve, site_by_code
from tests.alerts.helpers import T0, apply, finding, later

pytestmark = pytest.mark.db

OP = Actor("zhang.wei", "operator")
MGR = Actor("li.na", "ehs_manager")


def _raised(conn: psycopg.Connection, site: str) -> dict:
    config = apply(conn, site)
    service.apply_findings(conn=conn, findings=[finding(site, "gas.co", Severity.MEDIUM)], now=T0, config=config)
    [alarm] = service.list_alarms(conn=conn, site=site)
    return alarm


def _version(conn: psycopg.Connection, alarm_id: int) -> int:
    return service.versions(conn=conn, alarm_ids=[alarm_id])[alarm_id]


def test_a_stale_version_changes_nothing_and_carries_the_alarm_as_it_is(conn: psycopg.Connection, site: str) -> None:
    alarm = _raised(conn, site)
    seen = _version(conn, alarm["id"])
    service.comment(conn=conn, alarm_id=alarm["id"], actor=OP, text="looking", now=later(1))
    with pytest.raises(AlarmChanged) as stale:
        service.acknowledge(conn=conn, alarm_id=alarm["id"], actor=OP, now=later(2), expected_version=seen)
    assert stale.value.status == 409 and stale.value.extra == {"code": "alarm_changed"}
    assert (stale.value.seen, stale.value.current) == (seen, _version(conn, alarm["id"]))
    assert stale.value.alarm["state"] == "active_unacked"
    assert service.get_alarm(conn=conn, alarm_id=alarm["id"], events=False)["state"] == "active_unacked"
    done = service.acknowledge(
        conn=conn, alarm_id=alarm["id"], actor=OP, now=later(3), expected_version=_version(conn, alarm["id"])
    )
    assert done["state"] == "active_acked"


def test_an_alarm_outside_the_scope_is_not_found(conn: psycopg.Connection, site: str) -> None:
    alarm = _raised(conn, site)
    for scope in (CodeScope(["elsewhere"], None), CodeScope(None, [f"{site}/warehouse"])):
        with pytest.raises(NotFound):
            service.acknowledge(conn=conn, alarm_id=alarm["id"], actor=OP, now=later(1), scope=scope)
    mine = resolve(conn, site_ids=None, processes=["formation"])
    assert mine.areas is not None and f"{site}/formation" in mine.areas
    assert (
        service.shelve(
            conn=conn,
            alarm_id=alarm["id"],
            actor=OP,
            reason="sensor work",
            now=later(2),
            duration=timedelta(hours=1),
            scope=mine,
        )["state"]
        == "shelved"
    )
    with pytest.raises(IllegalTransition) as illegal:
        service.acknowledge(conn=conn, alarm_id=alarm["id"], actor=OP, now=later(3), scope=mine)
    assert isinstance(illegal.value, errors.Conflict) and illegal.value.extra["code"] == "illegal_transition"


def test_bypasses_are_scoped_in_sql_with_their_area_and_status(conn: psycopg.Connection, site: str) -> None:
    apply(conn, site)
    asked = flows.request_bypass(
        conn=conn, site=site, device="fan-01", actor=OP, reason="motor", now=T0, duration=timedelta(hours=1)
    )
    assert (asked["area"], asked["status"]) == ("formation", "requested")
    every = flows.list_bypasses(conn=conn, now=T0)
    assert [b["id"] for b in every] == [asked["id"]]
    assert flows.list_bypasses(conn=conn, now=T0, scope=CodeScope([site], [f"{site}/formation"])) == every
    assert flows.list_bypasses(conn=conn, now=T0, scope=CodeScope([site], [f"{site}/warehouse"])) == []
    assert flows.list_bypasses(conn=conn, now=T0, scope=CodeScope(["elsewhere"], None)) == []
    assert flows.list_bypasses(conn=conn, now=T0, site="elsewhere") == []
    with pytest.raises(NotFound):
        flows.approve_bypass(conn=conn, bypass_id=asked["id"], actor=MGR, now=T0, scope=CodeScope(["elsewhere"]))
    with pytest.raises(PermissionDenied, match="not in your scope"):
        flows.request_bypass(
            conn=conn,
            site=site,
            device="fan-01",
            actor=OP,
            reason="x",
            now=T0,
            duration=timedelta(hours=1),
            scope=CodeScope(["elsewhere"]),
        )
    approved = flows.approve_bypass(conn=conn, bypass_id=asked["id"], actor=MGR, now=later(1))
    assert approved["status"] == "active"
    with pytest.raises(Conflict, match="is active, not waiting for approval") as again:
        flows.approve_bypass(conn=conn, bypass_id=asked["id"], actor=MGR, now=later(2))
    assert again.value.status == 409
    assert flows.list_bypasses(conn=conn, now=later(2) + timedelta(hours=1)) == []  # expired
    [expired] = flows.list_bypasses(conn=conn, now=later(2) + timedelta(hours=1), active_only=False)
    assert expired["status"] == "expired"
    with pytest.raises(Conflict, match="is already expired"):
        flows.revoke_bypass(conn=conn, bypass_id=asked["id"], actor=OP, now=later(2) + timedelta(hours=1))


def test_every_refusal_is_a_domain_error_with_its_status() -> None:
    assert (NotFound("x").status, PermissionDenied("x").status, Conflict("x").status) == (404, 403, 409)
    assert all(isinstance(e("x"), errors.DomainError) for e in (NotFound, PermissionDenied, Conflict))
    assert isinstance(NotFound("x"), errors.NotFound) and isinstance(PermissionDenied("x"), errors.Forbidden)


def test_a_named_site_outside_the_scope_is_forbidden_and_an_unknown_one_not_found(
    conn: psycopg.Connection, site: str
) -> None:
    apply(conn, site)
    site_id = fetch_one(conn, "SELECT id FROM site WHERE code = %s", (site,))["id"]
    assert site_by_code(conn, site, site_ids=[site_id])["id"] == site_id
    assert site_by_code(conn, site, site_ids=None)["code"] == site
    with pytest.raises(errors.Forbidden):
        site_by_code(conn, site, site_ids=[site_id + 1])
    with pytest.raises(errors.Forbidden):  # an unknown site is not told apart from another's
        site_by_code(conn, "no-such-site", site_ids=[site_id])
    with pytest.raises(errors.NotFound):
        site_by_code(conn, "no-such-site", site_ids=None)
    check_site(conn, CodeScope([site], None), site)
    check_site(conn, CodeScope([site], None), None)
    with pytest.raises(errors.Forbidden):
        check_site(conn, CodeScope(["elsewhere"], None), site)
    with pytest.raises(errors.NotFound):
        check_site(conn, CodeScope.everything(), "no-such-site")


def test_a_link_without_a_recipient_opens_the_alarm_but_cannot_acknowledge_it(
    conn: psycopg.Connection, site: str
) -> None:
    alarm = _raised(conn, site)
    group = Link(alarm_id=alarm["id"], user_id=None, expires_at=later(60))
    assert link_access.alarm(conn, group)["id"] == alarm["id"]
    assert link_access.can_ack(conn, group, alarm) is False
    with pytest.raises(errors.Forbidden):
        link_access.acknowledge(conn, group, now=later(1), comment=None)
    with pytest.raises(errors.NotFound):
        link_access.alarm(conn, Link(alarm_id=alarm["id"] + 1000, user_id=None, expires_at=later(60)))
    assert service.get_alarm(conn=conn, alarm_id=alarm["id"], events=False)["state"] == "active_unacked"
