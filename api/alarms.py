"""Alarms as the API shows them: the caller's scope over alarm records, ``version``, the applicable response
plan, the actor of a person's action, and alerts' errors as API errors.

Alarm records name their site and area by code (``alarm.site``, ``alarm.area``) while a caller's ``Scope``
holds site ids and process types, so the scope is resolved once per request into site codes and, for callers
limited to some processes (regulators), into the ``site/area`` keys they may see (api/policy.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from alerts import models, service, store
from alerts.config import AlertConfig
from api.errors import Conflict, Forbidden, Invalid, NotFound
from api.plant_read import site_filter
from api.policy import Principal, Scope
from api.queries import fetch_all
from api.schemas.alarms import AlarmRead


@dataclass(frozen=True, slots=True)
class AlarmScope:
    """What a caller may see of the alarm record: site codes and ``site/area`` keys (None: no limit)."""

    sites: list[str] | None
    areas: list[str] | None

    def sees(self, site: str, area: str | None) -> bool:
        return ((self.sites is None or site in self.sites)
                and (self.areas is None or f"{site}/{area or ''}" in self.areas))


def alarm_scope(conn: psycopg.Connection, scope: Scope) -> AlarmScope:
    sites = None
    if scope.site_ids is not None:
        sites = [r["code"] for r in fetch_all(conn, "SELECT code FROM site WHERE id = ANY(%s) ORDER BY code",
                                              (scope.sites_param(),))]
    areas = None
    if scope.processes is not None:
        areas = [r["key"] for r in fetch_all(
            conn, "SELECT s.code || '/' || a.code AS key FROM area a JOIN site s ON s.id = a.site_id "
                  "WHERE a.process_type = ANY(%s) AND (%s::int[] IS NULL OR s.id = ANY(%s::int[]))",
            (scope.processes_param(), scope.sites_param(), scope.sites_param()))]
    return AlarmScope(sites, areas)


def check_site(conn: psycopg.Connection, scope: Scope, site: str | None) -> None:
    """A list filtered by a site outside the scope answers 403 (an unknown site 404)."""
    site_filter(conn, scope, site)


def actor(principal: Principal) -> models.Actor:
    """The alarm engine's actor for the caller; the audit record names them as every API action does."""
    return models.Actor(principal.actor, models.Role(principal.role.value))


def versions(conn: psycopg.Connection, alarm_ids: list[int]) -> dict[int, int]:
    """The id of each alarm's latest event (its ``version``)."""
    if not alarm_ids:
        return {}
    return {r["alarm_id"]: r["version"] for r in fetch_all(
        conn, "SELECT alarm_id, max(id) AS version FROM alarm_event WHERE alarm_id = ANY(%s) GROUP BY alarm_id",
        (alarm_ids,))}


def with_versions(conn: psycopg.Connection, alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = versions(conn, [a["id"] for a in alarms])
    return [{**a, "version": found.get(a["id"], 0)} for a in alarms]


def present(conn: psycopg.Connection, alarm: dict[str, Any]) -> dict[str, Any]:
    return with_versions(conn, [alarm])[0]


def as_json(conn: psycopg.Connection, alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm object ready for a JSON body outside a response model (conflict answers)."""
    return AlarmRead.model_validate(present(conn, alarm)).model_dump(mode="json")


def get_visible(conn: psycopg.Connection, ascope: AlarmScope, alarm_id: int, *,
                events: bool = False) -> dict[str, Any]:
    """One alarm the caller may see, else 404 (as if it did not exist)."""
    try:
        alarm = service.get_alarm(conn=conn, alarm_id=alarm_id, events=events)
    except models.NotFound:
        alarm = None
    if alarm is None or not ascope.sees(alarm["site"], alarm["area"]):
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def plan_for(config: AlertConfig, alarm: dict[str, Any]) -> dict[str, Any] | None:
    """The response plan level of the alarm's area that the alarm started, or None."""
    plan = config.plans.get((alarm["site"], alarm["area"] or ""))
    if plan is None or alarm["plan_level"] is None:
        return None
    level = next((lv for lv in plan.levels if lv.level == alarm["plan_level"]), None)
    if level is None:
        return None
    attrs = config.attrs(alarm["rule"])
    return {"site": alarm["site"], "area": alarm["area"], "name": plan.name, "name_en": plan.name_en,
            "level": level.level, "level_name": level.name, "level_name_en": level.name_en,
            "evacuation": level.evacuation.model_dump() if level.evacuation else None,
            "interlocks": [lock.model_dump() for lock in level.interlocks],
            "notify_roles": list(level.notify.roles),
            "operator_action": attrs.action, "operator_action_en": attrs.action_en}


@contextmanager
def domain_errors(*, field: str = "") -> Iterator[None]:
    """Call the alarm engine, with its refusals as API errors: 404, 403, 409, and 422 for input the domain rules
    refuse."""
    try:
        yield
    except models.NotFound as exc:
        raise NotFound(str(exc)) from None
    except models.PermissionDenied as exc:
        raise Forbidden(str(exc)) from None
    except models.AlarmError as exc:
        if exc.status == 409:
            raise Conflict(str(exc)) from None
        raise Invalid(str(exc), field=field) from None


def act(conn: psycopg.Connection, ascope: AlarmScope, alarm_id: int, seen_version: int | None,
        action: Callable[[], Any], *, field: str = "") -> Any:
    """Run a person's action on an alarm the caller sees, after checking the version they saw.

    The alarm is locked first (``store.alarm_by_id``), so nothing changes it between the check and the action.
    A stale ``seen_version`` answers 409 ``alarm_changed``, an action the alarm's state does not allow 409
    ``illegal_transition``; both carry the current alarm and change nothing.
    """
    locked = store.alarm_by_id(conn, alarm_id)
    if locked is None or not ascope.sees(locked["site"], locked["area"]):
        raise NotFound(f"no alarm {alarm_id}")
    current = versions(conn, [alarm_id]).get(alarm_id, 0)
    if seen_version is not None and seen_version != current:
        raise Conflict(f"alarm {alarm_id} changed since you saw it (version {seen_version}, now {current})",
                       extra={"code": "alarm_changed", "alarm": as_json(conn, service.get_alarm(
                           conn=conn, alarm_id=alarm_id, events=False))})
    with domain_errors(field=field):
        try:
            return action()
        except models.IllegalTransition as exc:
            raise Conflict(str(exc), extra={"code": "illegal_transition", "alarm": as_json(conn, service.get_alarm(
                conn=conn, alarm_id=alarm_id, events=False))}) from None
