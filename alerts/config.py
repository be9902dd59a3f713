"""The plant-file sections this package owns: alarm attributes, actuators and graded response plans (分级应急预案).

* ``alarms``: defaults (shelving limit, chattering and flood thresholds, interlock timing, who is notified per
  priority) and per-rule attributes (latching, class, suppression by design, operator action) keyed by rule id
  or glob: the master alarm database fields of standards.md section 1.5.
* ``actuators``: the devices interlocks may command, their actions, and whether they are simulated (drills
  command simulated devices only).
* ``response_plans``: per area, graded levels (level 1 = 一级, the most severe, as in Chinese emergency plans),
  each with the rules and severity that start it, interlock actions, who is notified and, where people must
  leave, evacuation instructions in Chinese and English with the route.

``AlertConfig`` is the compiled form used at run time (actuators and plans resolved against the registry).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.commands import KIND_ACTIONS
from core.model import Severity
from core.plant import PlantConfig
from core.registry import PlantIndex

SeverityName = Literal["low", "medium", "high", "critical"]
SOURCE = "$source"  # in a plan: the device whose finding started the plan


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotifySpec(_Spec):
    """Who is told and how (channel hints for the notifier; people come from the roster by role)."""

    roles: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list, description="wecom, dingtalk, feishu, sms, email, webpush")


class SuppressSpec(_Spec):
    rule: str = Field(description="cause rule id or glob")
    scope: Literal["device", "area", "site"] = "area"


class AlarmRuleSpec(_Spec):
    latching: bool = False
    klass: Literal["safety", "environmental", "process", "equipment", "system"] = Field("process", alias="class")
    suppressed_by: list[SuppressSpec] = Field(default_factory=list)
    action: str | None = Field(None, description="what the operator does (zh)")
    action_en: str | None = None
    consequence: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _notify_defaults() -> dict[str, NotifySpec]:
    return {
        "low": NotifySpec(roles=["operator"], channels=["webpush"]),
        "medium": NotifySpec(roles=["operator"], channels=["webpush", "wecom"]),
        "high": NotifySpec(roles=["operator", "shift_leader"], channels=["webpush", "wecom"]),
        "critical": NotifySpec(roles=["operator", "shift_leader", "ehs_manager"], channels=["webpush", "wecom", "sms"]),
    }


class AlarmDefaults(_Spec):
    #: Shelving must be time-limited (standards.md 1.2); a shift is 8 to 12 h.
    shelve_max_h: float = Field(8.0, gt=0)
    #: Chattering: 3 activations within a minute (ISA TR18.2.5 as commonly quoted; SignalForge's "more than 5
    #: transitions in 5 minutes" is about the same as 3 activations; both in standards.md 1.3, both tunable).
    chatter_count: int = Field(3, ge=2)
    chatter_window_s: float = Field(60.0, gt=0)
    #: Flood: starts above 10 alarms in 10 minutes, ends below 5 per 10 minutes (standards.md 1.3).
    flood_start: int = Field(10, ge=1)
    flood_end: int = Field(5, ge=1)
    flood_window_s: float = Field(600.0, gt=0)
    #: Stale alarms: active for more than 24 h (ISA-18.2 KPI table).
    stale_h: float = Field(24.0, gt=0)
    #: Interlock commands: validity, retries before a command counts as unconfirmed, and deadlines.
    command_ttl_s: float = Field(60.0, gt=0)
    command_retries: int = Field(2, ge=0, le=10)
    accept_within_s: float = Field(5.0, gt=0)
    done_within_s: float = Field(30.0, gt=0)
    notify: dict[SeverityName, NotifySpec] = Field(default_factory=_notify_defaults)


class AlarmSection(_Spec):
    defaults: AlarmDefaults = AlarmDefaults()
    rules: dict[str, AlarmRuleSpec] = Field(default_factory=dict, description="by rule id or glob")


class ActuatorSpec(_Spec):
    device: str = Field(description="device code or glob")
    site: str | None = None
    actions: list[str] | None = Field(None, description="defaults to the actions of the device kind")
    simulated: bool = Field(False, description="a simulated device: drills may command it")
    accept_within_s: float | None = Field(None, gt=0)
    done_within_s: float | None = Field(None, gt=0, description="e.g. a valve takes longer than a fan")


class InterlockSpec(_Spec):
    device: str = Field(description="device code, glob, or $source (the device whose finding started the plan)")
    action: str
    params: dict[str, Any] = Field(default_factory=dict)


class Evacuation(_Spec):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    route: str = Field(min_length=1)
    route_en: str = Field(min_length=1)
    assembly_point: str | None = None
    assembly_point_en: str | None = None


class PlanLevel(_Spec):
    level: int = Field(ge=1, le=4, description="1 = 一级 (most severe) ... 4 = 四级")
    name: str
    name_en: str | None = None
    min_severity: SeverityName
    rules: list[str] = Field(min_length=1, description="rule ids or globs that start this level")
    interlocks: list[InterlockSpec] = Field(default_factory=list)
    notify: NotifySpec = NotifySpec()
    evacuation: Evacuation | None = None


class ResponsePlan(_Spec):
    area: str
    site: str | None = None
    name: str
    name_en: str | None = None
    levels: list[PlanLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_levels(self) -> ResponsePlan:
        twice = [n for n, c in Counter(lv.level for lv in self.levels).items() if c > 1]
        if twice:
            raise ValueError(f"level {twice[0]} appears twice")
        return self


class AlertSection(BaseModel):
    """The parts of the plant file this package owns."""

    model_config = ConfigDict(extra="forbid")

    alarms: AlarmSection = AlarmSection()
    actuators: list[ActuatorSpec] = Field(default_factory=list)
    response_plans: list[ResponsePlan] = Field(default_factory=list)


# --- compiled form ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRow:
    site: str
    area: str
    code: str
    kind: str


def devices_from_plant(plant: PlantConfig) -> list[DeviceRow]:
    return [DeviceRow(s.code, a.code, d.code, d.kind) for s in plant.sites for a in s.areas for d in a.devices]


def devices_from_index(index: PlantIndex) -> list[DeviceRow]:
    return [DeviceRow(d.site, d.area, d.code, d.kind) for d in index.devices.values()]


@dataclass(frozen=True, slots=True)
class Actuator:
    site: str
    area: str
    device: str
    kind: str
    actions: tuple[str, ...]
    simulated: bool
    accept_within_s: float
    done_within_s: float


def _glob(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


@dataclass
class AlertConfig:
    """The alert section resolved against the registry, for the hot path and the service functions."""

    section: AlertSection = field(default_factory=AlertSection)
    actuators: dict[tuple[str, str], Actuator] = field(default_factory=dict)
    plans: dict[tuple[str, str], ResponsePlan] = field(default_factory=dict)
    revision: int = 0

    @classmethod
    def build(cls, section: AlertSection, devices: Iterable[DeviceRow], revision: int = 0) -> AlertConfig:
        devices = list(devices)
        sites = sorted({d.site for d in devices})
        d = section.alarms.defaults
        actuators: dict[tuple[str, str], Actuator] = {}
        for spec in section.actuators:
            for dev in devices:
                if _glob(dev.code, spec.device) and spec.site in (None, dev.site):
                    actions = tuple(spec.actions) if spec.actions is not None else KIND_ACTIONS.get(dev.kind, ())
                    actuators[(dev.site, dev.code)] = Actuator(
                        dev.site,
                        dev.area,
                        dev.code,
                        dev.kind,
                        actions,
                        spec.simulated,
                        spec.accept_within_s or d.accept_within_s,
                        spec.done_within_s or d.done_within_s,
                    )
        plans = {}
        for plan in section.response_plans:
            for site in [plan.site] if plan.site else sites:
                plans[(site, plan.area)] = plan
        return cls(section, actuators, plans, revision)

    @property
    def defaults(self) -> AlarmDefaults:
        return self.section.alarms.defaults

    def attrs(self, rule: str) -> AlarmRuleSpec:
        """The alarm attributes of a rule: its exact entry, else the first glob that matches, else defaults."""
        rules = self.section.alarms.rules
        if rule in rules:
            return rules[rule]
        return next((spec for pattern, spec in rules.items() if _glob(rule, pattern)), AlarmRuleSpec())

    def causes_of(self, rule: str) -> list[SuppressSpec]:
        return list(self.attrs(rule).suppressed_by)

    def notify_for(self, severity: Severity) -> NotifySpec:
        return self.defaults.notify.get(str(max(severity, Severity.LOW)), NotifySpec())  # type: ignore[call-overload]

    def actuator(self, site: str, device: str) -> Actuator | None:
        return self.actuators.get((site, device))


# --- checks against the registry and the rules --------------------------------------------------------------


def check_alerts(section: AlertSection, plant: PlantConfig, rule_ids: Iterable[str]) -> list[tuple[tuple, str]]:
    """Problems one item cannot see alone: names of rules, areas, devices and actions that do not exist."""
    problems: list[tuple[tuple, str]] = []
    rule_ids = set(rule_ids)
    devices = devices_from_plant(plant)
    sites = {d.site for d in devices}
    areas = {(d.site, d.area) for d in devices}

    def any_rule(pattern: str) -> bool:
        return pattern in rule_ids or any(_glob(r, pattern) for r in rule_ids)

    for key, spec in section.alarms.rules.items():
        if not any_rule(key) and not key.startswith(("interlock.", "drill")):
            problems.append((("alarms", "rules", key), f"no rule {key!r} (alarm attributes for nothing)"))
        for i, cause in enumerate(spec.suppressed_by):
            if not any_rule(cause.rule):
                problems.append((("alarms", "rules", key, "suppressed_by", i, "rule"), f"no rule {cause.rule!r}"))
    config = AlertConfig.build(section, devices)
    for i, spec in enumerate(section.actuators):
        matched = [d for d in devices if _glob(d.code, spec.device) and spec.site in (None, d.site)]
        if not matched:
            problems.append((("actuators", i, "device"), f"no device {spec.device!r} in the plant"))
        for dev in matched:
            if spec.actions is None and dev.kind not in KIND_ACTIONS:
                problems.append(
                    (
                        ("actuators", i, "actions"),
                        f"device {dev.code!r} is a {dev.kind}, which has no standard actions: list its actions",
                    )
                )
                break
    seen: set[tuple[str, str]] = set()
    for p, plan in enumerate(section.response_plans):
        loc = ("response_plans", p)
        plan_sites = [plan.site] if plan.site else sorted(sites)
        for site in plan_sites:
            if (site, plan.area) not in areas:
                problems.append(((*loc, "area"), f"no area {plan.area!r} in site {site!r}"))
            elif (site, plan.area) in seen:
                problems.append(((*loc, "area"), f"area {plan.area!r} has two response plans"))
            seen.add((site, plan.area))
        for lv, level in enumerate(plan.levels):
            for r, pattern in enumerate(level.rules):
                if not any_rule(pattern):
                    problems.append(((*loc, "levels", lv, "rules", r), f"no rule {pattern!r}"))
            for k, lock in enumerate(level.interlocks):
                where = (*loc, "levels", lv, "interlocks", k)
                if lock.device == SOURCE:
                    in_area = [a for a in config.actuators.values() if a.area == plan.area and lock.action in a.actions]
                    if not in_area:
                        problems.append(((*where, "action"), f"no actuator in area {plan.area!r} can {lock.action}"))
                    continue
                targets = [
                    a for a in config.actuators.values() if a.site in plan_sites and _glob(a.device, lock.device)
                ]
                if not targets:
                    problems.append(((*where, "device"), f"{lock.device!r} is not a declared actuator"))
                for target in targets:
                    if lock.action not in target.actions:
                        problems.append(
                            (
                                (*where, "action"),
                                f"{target.device} ({target.kind}) cannot "
                                f"{lock.action}; it can {', '.join(target.actions) or 'nothing'}",
                            )
                        )
    return problems
