"""Graded response plans, purely: which plan levels a finding starts, and the interlock commands they ask for.

A level starts when a finding of one of its rules reaches the level's minimum severity from below (an edge:
a step back down, or the same severity again after a restart, starts nothing). Its interlocks are resolved to
actuators: a device code or glob in the plan's site, or ``$source``, the device the finding is about (the
smallest protection unit is the module, GB/T 42288). Commands to a bypassed actuator are not sent but kept as
``skipped`` with the bypass named. In a drill, only simulated actuators are commanded; the others are kept as
``skipped`` so the record shows what the real plan would have done.
"""

from __future__ import annotations

import fnmatch
import uuid
from dataclasses import dataclass
from datetime import datetime

from alerts.config import SOURCE, AlertConfig, PlanLevel, ResponsePlan
from alerts.decisions import CommandStatus, InterlockCommand
from core.model import Finding, Severity


@dataclass(frozen=True, slots=True)
class Activation:
    """One plan level started by a finding."""

    site: str
    area: str
    plan: ResponsePlan
    level: PlanLevel

    @property
    def key(self) -> str:
        return f"{self.site}/{self.area}/{self.level.level}"

    def as_dict(self) -> dict:
        return {
            "plan": f"{self.site}/{self.area}",
            "level": self.level.level,
            "name": self.level.name,
            "name_en": self.level.name_en,
        }


@dataclass(frozen=True, slots=True)
class Bypass:
    id: int
    site: str
    device: str
    action: str | None
    expires_at: datetime

    def covers(self, site: str, device: str, action: str, now: datetime) -> bool:
        return self.site == site and self.device == device and self.action in (None, action) and now < self.expires_at


def _severity(name: str) -> Severity:
    return Severity[name.upper()]


def activations(config: AlertConfig, finding: Finding) -> list[Activation]:
    """The plan levels this finding starts, most severe level first."""
    subject = finding.subject
    plan = config.plans.get((subject.site, subject.area or ""))
    if plan is None or finding.severity == Severity.NORMAL:
        return []
    previous = Severity(int(finding.details.previous or 0))
    out = [
        Activation(subject.site, subject.area or "", plan, level)
        for level in plan.levels
        if previous < _severity(level.min_severity) <= finding.severity
        and any(fnmatch.fnmatchcase(finding.rule, pattern) for pattern in level.rules)
    ]
    return sorted(out, key=lambda a: a.level.level)


def commands(
    config: AlertConfig,
    started: list[Activation],
    *,
    source_device: str | None,
    now: datetime,
    bypasses: list[Bypass] = (),
    drill: bool = False,
) -> list[InterlockCommand]:
    """Commands for the started levels: one per (device, action, params), first level first, ``pending`` or
    ``skipped`` (with the reason in ``detail``)."""
    out: list[InterlockCommand] = []
    seen: set[tuple] = set()
    for act in started:
        for lock in act.level.interlocks:
            if lock.device == SOURCE:
                targets = [config.actuator(act.site, source_device)] if source_device else []
                targets = [t for t in targets if t is not None and lock.action in t.actions]
            else:
                targets = [
                    a
                    for a in config.actuators.values()
                    if a.site == act.site and fnmatch.fnmatchcase(a.device, lock.device)
                ]
            for target in sorted(targets, key=lambda t: t.device):
                key = (target.site, target.device, lock.action, tuple(sorted(lock.params.items())))
                if key in seen:
                    continue
                seen.add(key)
                status, detail = CommandStatus.PENDING, ""
                bypass = next((b for b in bypasses if b.covers(target.site, target.device, lock.action, now)), None)
                if bypass is not None:
                    status = CommandStatus.SKIPPED
                    detail = f"bypassed (bypass {bypass.id} until {bypass.expires_at:%Y-%m-%d %H:%M})"
                elif drill and not target.simulated:
                    status, detail = CommandStatus.SKIPPED, "drill: a real device is never commanded in a drill"
                out.append(
                    InterlockCommand(
                        id=str(uuid.uuid4()),
                        site=target.site,
                        area=target.area,
                        device=target.device,
                        action=lock.action,
                        params=dict(lock.params),
                        plan=f"{act.site}/{act.area}",
                        plan_level=act.level.level,
                        drill=drill,
                        status=status,
                        detail=detail,
                        accept_within_s=target.accept_within_s,
                        done_within_s=target.done_within_s,
                        retries=config.defaults.command_retries,
                    )
                )
    return out
