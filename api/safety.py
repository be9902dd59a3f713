"""Applying the safety configuration (the rule set and the alarm configuration): one use case for the console
(``ehs config apply``, through ``cli.plantfile.apply_full``) and the API (``PUT /api/v1/rules``,
``PUT /api/v1/alarm-config``), as ``api.users`` is for accounts.

It checks a section against the registry and against the other section (given, or the one in force: a rule set
must keep the alarm configuration's rule names valid), stores each changed section as a new revision and, unless
the caller records the change itself (the console records one revision and one audit entry for a whole plant
file), records a configuration revision (running processes reload) and one audit entry. Every application of the
safety configuration is audited as ``config.apply``; entries written before (``rule.rule_set``,
``rule.alarm_config``, API) stay as they are and readable, under the same compliance filter.

It lives here, not in a domain, because it joins two siblings (``detectors`` and ``alerts``): only ``api``, ``cli``
and the composition roots may import both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
import psycopg

from alerts import config_store
from alerts.config import AlertSection, check_alerts
from core import audit
from core.db import execute
from core.plant import PlantConfig, export_plant, record_revision
from detectors import service as rule_service
from detectors.specs import RuleSection, check_rules

#: The one audit action of an application of the configuration (plant file or safety section).
ACTION = "config.apply"


@dataclass
class SafetyApplied:
    """Revisions stored (None: unchanged or not given), or the problems that stopped anything being stored."""

    rules_revision: int | None = None
    alarms_revision: int | None = None
    problems: list[tuple[tuple, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.rules_revision is not None or self.alarms_revision is not None


def check(
    conn: psycopg.Connection,
    *,
    rules: RuleSection | None = None,
    alarms: AlertSection | None = None,
    plant: PlantConfig | None = None,
) -> list[tuple[tuple, str]]:
    """Cross-reference problems of the given sections, each located under ``rules``/``alarms`` (the given
    sections) or ``alarm_config`` (the alarm configuration in force, which a new rule set must keep valid)."""
    plant = plant if plant is not None else export_plant(conn=conn)
    problems: list[tuple[tuple, str]] = []
    if rules is not None:
        problems += [(("rules", *loc), m) for loc, m in check_rules(rules, plant)]
    rule_ids = [r.id for r in (rules if rules is not None else rule_service.load_rules(conn=conn)[1]).rules]
    if alarms is not None:
        problems += [(("alarms", *loc), m) for loc, m in check_alerts(alarms, plant, rule_ids)]
    elif rules is not None:
        row = execute(conn, "SELECT body FROM alarm_config ORDER BY id DESC LIMIT 1").fetchone()
        if row is not None:
            problems += [
                (("alarm_config", *loc), m)
                for loc, m in check_alerts(AlertSection.model_validate(row[0]), plant, rule_ids)
            ]
    return problems


def apply_safety(
    conn: psycopg.Connection,
    *,
    source: str,
    actor: str = "",
    rules: RuleSection | None = None,
    alarms: AlertSection | None = None,
    plant: PlantConfig | None = None,
    checked: bool = False,
    record: bool = True,
    target: str = "",
) -> SafetyApplied:
    """Check (unless ``checked``: the caller validated them against ``plant``), then store the given sections in the
    caller's transaction; with ``record``, a configuration revision and one ``config.apply`` audit entry naming
    ``actor`` when anything changed. Problems are returned and nothing is stored."""
    if not checked and (problems := check(conn, rules=rules, alarms=alarms, plant=plant)):
        return SafetyApplied(problems=problems)
    applied = SafetyApplied(
        rules_revision=None if rules is None else rule_service.apply_rules(conn=conn, section=rules, source=source),
        alarms_revision=None if alarms is None else config_store.apply_config(conn=conn, section=alarms, source=source),
    )
    if record and applied.changed:
        if not actor:
            raise ValueError("an audited application names its actor")
        revisions = {
            name: rev
            for name, rev in (("rule_set", applied.rules_revision), ("alarm_config", applied.alarms_revision))
            if rev is not None
        }
        digest = _digest(conn, revisions)
        record_revision(
            conn, source=source, sha256=digest, summary={f"{name}_revision": rev for name, rev in revisions.items()}
        )
        audit.append(
            conn,
            actor=actor,
            action=ACTION,
            target=target or ",".join(f"{name}:{rev}" for name, rev in revisions.items()),
            detail={
                "rules_revision": applied.rules_revision,
                "alarms_revision": applied.alarms_revision,
                "sha256": digest,
            },
        )
    return applied


def _digest(conn: psycopg.Connection, revisions: dict[str, int]) -> str:
    """The stored digest of the one section changed, else a digest over the stored digests."""
    shas = [
        execute(conn, f"SELECT sha256 FROM {name} WHERE id = %s", (rev,)).fetchone()[0]  # noqa: S608
        for name, rev in revisions.items()
    ]
    return shas[0] if len(shas) == 1 else hashlib.sha256(orjson.dumps(shas)).hexdigest()
