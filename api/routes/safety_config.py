"""The versioned safety configuration: the rule set (``rule_set``, detectors) and the alarm configuration
(``alarm_config``: alarm attributes, actuators and graded response plans, one document of the alerts section).

Both are stored as whole revisions (migration 0010), exactly as ``ehs config apply`` stores them from the plant
file, so the API offers each as one versioned document: ``GET`` the current revision, ``GET .../versions`` the
history, ``PUT`` a new revision from JSON (administrators of every site). A body is validated with the same
models as the YAML (``detectors.specs.RuleSection``, ``alerts.config.AlertSection``) and then checked against
the registry and each other (a plan naming a device that is not an actuator, an alarm attribute for no rule);
every problem answers 422 naming its field. A stored revision is announced as a configuration revision, so the
running processes reload, and audited as ``config.apply`` like a plant file (``api.safety``, the one application
of the safety configuration shared with ``ehs config apply``). Response plans live in the
alarm configuration (``response_plans``), so there is no separate plan document.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from alerts.config import AlertSection
from api import config_scope, safety
from api.alarms import input_field
from api.deps import Conn, PathId, require
from api.errors import NotFound, field_errors
from api.plant_read import site_filter
from api.policy import Permission, Principal
from api.schemas.alarm_config import AlarmConfigRead, AppliedRead, RevisionRead, RuleSetRead
from core import config_documents
from core.plant import export_plant
from detectors.specs import RuleSection

router = APIRouter(prefix="/api/v1", tags=["safety configuration"])
Reader = Annotated[Principal, require(Permission.ALARMS_READ)]
Writer = Annotated[Principal, require(Permission.SAFETY_CONFIG_WRITE)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _all_sites(principal: Principal) -> None:
    if principal.scope.site_ids is not None:
        raise HTTPException(
            403, "the safety configuration covers every site: only an administrator of all sites may change it"
        )


def _latest(conn: psycopg.Connection, table: str) -> dict[str, Any]:
    row = config_documents.latest(conn, table)
    if row is None:
        raise NotFound(f"no {table.replace('_', ' ')} has been applied yet")
    return row


def _versions(conn: psycopg.Connection, table: str, limit: int) -> list[dict[str, Any]]:
    return config_documents.revisions(conn, table, limit)


def _in_body(problems: list[tuple[tuple, str]]) -> list[tuple[tuple, str]]:
    """Problems of the request's section located under ``body`` (those of the configuration in force keep theirs)."""
    return [(("body", *loc[1:]) if loc[0] in ("rules", "alarms") else loc, m) for loc, m in problems]


def _problems(problems: list[tuple[tuple, str]]) -> JSONResponse:
    """Cross-reference problems as one 422 naming each field (``body...``, or the stored configuration's)."""
    return field_errors([(_field(loc), message) for loc, message in problems])


# --- alarm configuration -----------------------------------------------------------------------------------


def _scoped_config(conn: psycopg.Connection, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    rules = (config_documents.latest_body(conn, "rule_set") or {}).get("rules", [])
    return {**row, "body": config_scope.alarm_config(conn, principal.scope, row["body"], rules)}


@router.get("/alarm-config", response_model=AlarmConfigRead)
def get_alarm_config(principal: Reader, conn: Conn):
    """The current alarm configuration: alarm attributes, actuators and response plans (callers limited to some
    sites or processes see those that concern them)."""
    return _scoped_config(conn, principal, _latest(conn, "alarm_config"))


@router.get("/alarm-config/versions", response_model=list[RevisionRead])
def alarm_config_versions(principal: Reader, conn: Conn, limit: Limit = 100):
    """Revisions of the alarm configuration, newest first."""
    return _versions(conn, "alarm_config", limit)


@router.get("/alarm-config/versions/{revision}", response_model=AlarmConfigRead)
def alarm_config_version(revision: PathId, principal: Reader, conn: Conn):
    row = config_documents.revision(conn, "alarm_config", revision)
    if row is None:
        raise NotFound(f"no alarm configuration revision {revision}")
    return _scoped_config(conn, principal, row)


@router.put("/alarm-config", response_model=AppliedRead)
def put_alarm_config(body: AlertSection, principal: Writer, conn: Conn):
    """Store a new revision of the alarm configuration (unchanged bodies store nothing)."""
    _all_sites(principal)
    with input_field(""):
        plant = export_plant(conn=conn)
        problems = _in_body(safety.check(conn, alarms=body, plant=plant))
        for p, plan in enumerate(body.response_plans):  # a plan's people must hold its site
            problems += [
                (tuple(field.split(".")), m)
                for field, m in config_scope.recipient_problems(
                    conn,
                    {
                        f"body.response_plans.{p}.levels.{lv}.notify.users": level.notify.users
                        for lv, level in enumerate(plan.levels)
                    },
                    plan.site,
                )
            ]
        if problems:
            return _problems(problems)
        applied = safety.apply_safety(
            conn, actor=principal.actor, source=f"api:{principal.actor}", alarms=body, plant=plant, checked=True
        )
        if not applied.changed:
            return {"revision": _latest(conn, "alarm_config")["revision"], "changed": False}
    return {"revision": applied.alarms_revision, "changed": True}


# --- rule set ----------------------------------------------------------------------------------------------


@router.get("/rules", response_model=RuleSetRead)
def get_rules(
    principal: Reader,
    conn: Conn,
    site: Annotated[str | None, Query(max_length=64, description="Only rules that select this site")] = None,
):
    """The current rule set with its revision; with ``site`` (one of yours), the rules whose selection can include
    it. Callers limited to some sites or processes see the rules that select their points."""
    site_filter(conn, principal.scope, site)
    row = _latest(conn, "rule_set")
    rules = config_scope.rules(conn, principal.scope, row.pop("body").get("rules", []))
    if site is not None:
        rules = [r for r in rules if _selects(r.get("select") or {}, site)]
    return {**row, "rules": rules}


def _selects(select: dict[str, Any], site: str) -> bool:
    wanted = select.get("site")
    if wanted is None:
        return True
    return any(fnmatch.fnmatchcase(site, p) for p in ([wanted] if isinstance(wanted, str) else wanted))


@router.get("/rules/versions", response_model=list[RevisionRead])
def rule_versions(principal: Reader, conn: Conn, limit: Limit = 100):
    """Revisions of the rule set, newest first."""
    return _versions(conn, "rule_set", limit)


@router.put("/rules", response_model=AppliedRead)
def put_rules(body: RuleSection, principal: Writer, conn: Conn):
    """Store a new revision of the rule set (unchanged bodies store nothing). The alarm configuration must still
    name existing rules."""
    _all_sites(principal)
    with input_field(""):
        plant = export_plant(conn=conn)
        problems = _in_body(safety.check(conn, rules=body, plant=plant))  # the alarm configuration in force must
        if problems:  # still name real rules
            return _problems(problems)
        applied = safety.apply_safety(
            conn, actor=principal.actor, source=f"api:{principal.actor}", rules=body, plant=plant, checked=True
        )
        if not applied.changed:
            return {"revision": _latest(conn, "rule_set")["revision"], "changed": False}
    return {"revision": applied.rules_revision, "changed": True}
