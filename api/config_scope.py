"""The safety configuration as one caller may see it: the rules, actuators and response plans that concern the
sites and processes of their scope (api.policy.Scope), nothing of other sites.

The stored documents cover every site (one rule set, one alarm configuration); a caller limited to some sites or
processes gets each document cut down to the items that apply to at least one area, device or point they can
see: a rule whose selection matches one of their points, an actuator or a plan of one of their areas, alarm
attributes of the rules they see. A plan's recipients (``notify.users``) travel with the plan.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import ValidationError

from api.policy import Scope
from core.scope import plant_view, recipients_for
from detectors.specs import PointKind, PointRow, Select, selected


@dataclass(frozen=True)
class Visible:
    """What a scope sees of the plant: points (as rule selectors see them), areas and devices by site code."""

    points: list[PointRow]
    areas: set[tuple[str, str]]
    devices: set[tuple[str, str]]

    @classmethod
    def load(cls, conn: psycopg.Connection, scope: Scope) -> Visible:
        view = plant_view(conn, site_ids=scope.site_ids, processes=scope.processes)
        points = [
            PointRow(
                r["site"], r["area"], r["device"], r["device_kind"], r["key"], r["quantity"], "", PointKind.GAUGE, 0.0
            )
            for r in view.points
        ]
        return cls(points, view.areas, view.devices)

    def sees_rule(self, rule: dict[str, Any]) -> bool:
        try:
            select = Select.model_validate(rule.get("select") or {})
        except ValidationError:
            return False
        return bool(selected(select, self.points))

    def sees_actuator(self, spec: dict[str, Any]) -> bool:
        return any(
            spec.get("site") in (None, site) and fnmatch.fnmatchcase(device, str(spec.get("device", "")))
            for site, device in self.devices
        )

    def sees_plan(self, plan: dict[str, Any]) -> bool:
        return any(plan.get("site") in (None, site) and area == plan.get("area") for site, area in self.areas)


def _rule_matches(rule_id: str, key: str) -> bool:
    return rule_id == key or fnmatch.fnmatchcase(rule_id, key)


def rules(conn: psycopg.Connection, scope: Scope, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules whose selection matches at least one point in ``scope``."""
    if scope.site_ids is None and scope.processes is None:
        return items
    visible = Visible.load(conn, scope)
    return [r for r in items if visible.sees_rule(r)]


def alarm_config(
    conn: psycopg.Connection, scope: Scope, body: dict[str, Any], rule_set: list[dict[str, Any]]
) -> dict[str, Any]:
    """The alarm configuration cut down to ``scope``: its actuators, plans, and attributes of the rules it sees."""
    if scope.site_ids is None and scope.processes is None:
        return body
    visible = Visible.load(conn, scope)
    rule_ids = [r.get("id", "") for r in rule_set if visible.sees_rule(r)]
    alarms = dict(body.get("alarms") or {})
    if isinstance(alarms.get("rules"), dict):
        alarms["rules"] = {
            key: spec for key, spec in alarms["rules"].items() if any(_rule_matches(rid, key) for rid in rule_ids)
        }
    return {
        **body,
        "alarms": alarms,
        "actuators": [a for a in body.get("actuators") or [] if visible.sees_actuator(a)],
        "response_plans": [p for p in body.get("response_plans") or [] if visible.sees_plan(p)],
    }


def recipient_problems(
    conn: psycopg.Connection, names: dict[str, list[str]], site: str | None
) -> list[tuple[str, str]]:
    """(field, message) for each named recipient who cannot receive for ``site`` (None: every site).

    A user who does not exist, is disabled, or lacks the site gets the same message, so that these endpoints do
    not tell a site's manager which usernames exist elsewhere.
    """
    wanted = sorted({n for values in names.values() for n in values})
    if not wanted:
        return []
    fit = recipients_for(conn, wanted, site)
    where = f"site {site}" if site else "every site"
    return [
        (field, f"no user {name!r} who can receive notifications for {where}")
        for field, values in names.items()
        for name in values
        if name not in fit
    ]
