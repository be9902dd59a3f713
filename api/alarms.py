"""Alarms as the API shows them: the caller's scope over alarm records, ``version``, the applicable response
plan, the actor of a person's action, and alerts' errors as API errors.

Alarm records name their site and area by code (``alarm.site``, ``alarm.area``) while a caller's ``Scope``
holds site ids and process types, so the scope is resolved once per request into site codes and, for callers
limited to some processes (regulators), into the ``site/area`` keys they may see (``core.scope``); the alarm
engine's functions take that and check it (and the version a person saw) themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from alerts import models, service
from alerts.alarm import Alarm
from alerts.config import AlertConfig
from api.errors import NotFound
from api.plant_read import site_filter
from api.policy import Principal, Scope
from api.schemas.alarms import AlarmRead
from core.errors import DomainError
from core.scope import CodeScope, resolve

#: What a caller may see of the alarm record (site codes, ``site/area`` keys); the domain functions take it.
AlarmScope = CodeScope


def alarm_scope(conn: psycopg.Connection, scope: Scope) -> CodeScope:
    """The caller's scope in codes (resolved once per request)."""
    return resolve(conn, site_ids=scope.site_ids, processes=scope.processes)


def check_site(conn: psycopg.Connection, scope: Scope, site: str | None) -> None:
    """A list filtered by a site outside the scope answers 403 (an unknown site 404)."""
    site_filter(conn, scope, site)


def actor(principal: Principal) -> models.Actor:
    """The alarm engine's actor for the caller; the audit record names them as every API action does."""
    return models.Actor(principal.actor, models.Role(principal.role.value))


def plain(alarm: Alarm | Mapping[str, Any]) -> dict[str, Any]:
    """The alarm engine's ``Alarm`` as the dict the API answers with (the boundary of the read model)."""
    return alarm.to_dict() if isinstance(alarm, Alarm) else dict(alarm)


def with_versions(conn: psycopg.Connection, alarms: Sequence[Alarm | Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [plain(a) for a in alarms]
    found = service.versions(conn=conn, alarm_ids=[a["id"] for a in rows])
    return [{**a, "version": found.get(a["id"], 0)} for a in rows]


def present(conn: psycopg.Connection, alarm: Alarm | Mapping[str, Any]) -> dict[str, Any]:
    return with_versions(conn, [alarm])[0]


def as_json(conn: psycopg.Connection, alarm: Alarm | Mapping[str, Any]) -> dict[str, Any]:
    """An alarm object ready for a JSON body outside a response model (conflict answers)."""
    return AlarmRead.model_validate(present(conn, alarm)).model_dump(mode="json")


def get_visible(conn: psycopg.Connection, ascope: AlarmScope, alarm_id: int, *, events: bool = False) -> Alarm:
    """One alarm the caller may see (site-level alarms, without an area, with their site: core.scope), else 404
    (as if it did not exist)."""
    try:
        alarm = service.get_alarm(conn=conn, alarm_id=alarm_id, events=events)
    except models.NotFound:
        alarm = None
    if alarm is None or not ascope.sees(alarm.site, alarm.area, site_level=True):
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
    return {
        "site": alarm["site"],
        "area": alarm["area"],
        "name": plan.name,
        "name_en": plan.name_en,
        "level": level.level,
        "level_name": level.name,
        "level_name_en": level.name_en,
        "evacuation": level.evacuation.model_dump() if level.evacuation else None,
        "interlocks": [lock.model_dump() for lock in level.interlocks],
        "notify_roles": list(level.notify.roles),
        "operator_action": attrs.action,
        "operator_action_en": attrs.action_en,
    }


@contextmanager
def input_field(field: str) -> Iterator[None]:
    """Name the input a domain refusal is about when the domain did not (422 answers name a field)."""
    try:
        yield
    except DomainError as exc:
        if exc.field is None:
            exc.field = field
        raise


def act(conn: psycopg.Connection, alarm_id: int, action: Callable[[], Any], *, field: str = "") -> Any:
    """Run a person's action on an alarm; the domain checks the caller's scope and the version they saw.

    A stale ``seen_version`` answers 409 ``alarm_changed``, an action the alarm's state does not allow 409
    ``illegal_transition``; both carry the current alarm and change nothing.
    """
    try:
        with input_field(field):
            return action()
    except models.AlarmChanged as exc:
        exc.extra["alarm"] = as_json(conn, exc.alarm)
        raise
    except models.IllegalTransition as exc:
        exc.extra["alarm"] = as_json(conn, service.get_alarm(conn=conn, alarm_id=alarm_id, events=False))
        raise
