"""The whole plant file: the registry (core), the rules (detectors) and the alarm sections (alerts).

A plant file may keep its safety sections in sibling files named under ``include:`` (the demo plant keeps its
rule pack and response plans in ``demo-safety.yaml``). Each file is validated on its own, so every error names
its own file, line and field; then the cross-references are checked (a rule that selects nothing, a plan that
names a device that is not an actuator...). Applying writes the registry, a rule-set revision and an
alarm-configuration revision in one transaction, and records a configuration revision when anything changed, so
running processes reload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from pydantic import ConfigDict

from alerts.config import AlertSection, check_alerts
from api.safety import apply_safety
from compliance import service as compliance_service
from compliance.config import ComplianceSection, check_compliance
from core.plant import ApplySummary, PlantConfig, apply_plant, check_references, record_revision
from core.yamlconf import ConfigError, load_model, raise_problems, read_yaml
from detectors.specs import RuleSection, check_rules
from hazwaste.catalogue import HazwasteSection, apply_section, check_hazwaste
from reports.config import ReportsSection, apply_reports, check_reports


class SafetySections(RuleSection, AlertSection, ComplianceSection, HazwasteSection, ReportsSection):
    """The sections of the plant file beside the registry (report schedules included)."""

    model_config = ConfigDict(extra="forbid")


class MainFile(PlantConfig, SafetySections):
    """A plant file: the registry, and optionally the safety sections inline."""

    model_config = ConfigDict(extra="forbid")


SECTIONS = tuple(SafetySections.model_fields)


@dataclass
class FullPlant:
    plant: PlantConfig
    safety: SafetySections
    files: dict[str, Path] = field(default_factory=dict)  # section -> the file it came from


def load_full(path: str | Path) -> FullPlant:
    """Read a plant file and its includes; raise ``ConfigError`` naming file, line and field of every problem."""
    path = Path(path)
    data, lines = read_yaml(path)
    main = load_model(path, MainFile, data, lines)
    merged: dict = {name: getattr(main, name) for name in SECTIONS if name in (data or {})}
    files = {name: path for name in merged}
    line_maps = {path: lines}
    problems: list[str] = []
    for name in main.include:
        sub = (path.parent / name).resolve()
        sub_data, sub_lines = read_yaml(sub)
        part = load_model(sub, SafetySections, sub_data, sub_lines)
        line_maps[sub] = sub_lines
        for section in sub_data or {}:
            if section in merged:
                problems.append(
                    f"{sub}:{sub_lines.get((section,), '?')}: {section}: also given in "
                    f"{files[section]}; give each section once"
                )
                continue
            merged[section] = getattr(part, section)
            files[section] = sub
    if problems:
        raise ConfigError(path, problems)
    plant = PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields)))
    safety = SafetySections.model_validate(merged)
    raise_problems(path, lines, check_references(plant))
    found = check_rules(safety, plant) + check_alerts(safety, plant, [r.id for r in safety.rules])
    found += check_compliance(ComplianceSection(outfalls=safety.outfalls), plant)
    found += check_hazwaste(safety, plant)
    found += check_reports(safety, plant)
    by_file: dict[Path, list] = {}
    for loc, message in found:
        by_file.setdefault(files.get(loc[0], path), []).append((loc, message))
    errors: list[str] = []
    for file, items in by_file.items():
        try:
            raise_problems(file, line_maps[file], items)
        except ConfigError as exc:
            errors += exc.problems
    if errors:
        raise ConfigError(path, errors)
    return FullPlant(plant, safety, files)


@dataclass
class FullSummary:
    registry: ApplySummary
    rules_revision: int | None
    alarms_revision: int | None
    revision: int | None
    compliance_revision: int | None = None
    report_schedules: dict[str, list[str]] = field(default_factory=lambda: {"put": [], "disabled": []})

    @property
    def changed(self) -> bool:
        return self.revision is not None


def apply_full(*, conn: psycopg.Connection, full: FullPlant, source: str) -> FullSummary:
    """Apply registry, rules and alarm configuration in the caller's transaction (idempotent)."""
    registry = apply_plant(conn=conn, plant=full.plant, source=source)
    # the one application of the safety sections (shared with the API); load_full checked them against the file's
    # plant with file and line, and ``ehs config apply`` audits the whole file as one ``config.apply`` entry
    safety = apply_safety(
        conn,
        source=source,
        rules=RuleSection(rules=full.safety.rules),
        alarms=AlertSection.model_validate(
            full.safety.model_dump(include=set(AlertSection.model_fields), by_alias=True)
        ),
        plant=full.plant,
        checked=True,
        record=False,
    )
    rules, alarms = safety.rules_revision, safety.alarms_revision
    compliance = compliance_service.apply_compliance(
        conn=conn, section=ComplianceSection(outfalls=full.safety.outfalls), source=source
    )
    if full.safety.hazwaste:  # optional: plant files without the section leave the catalogue alone
        apply_section(conn=conn, section=HazwasteSection(hazwaste=full.safety.hazwaste))
    # the report schedules after the registry (they name its sites); schedules an earlier file made and this one
    # leaves out (the whole section left out too) are disabled; console and API schedules are left alone
    schedules = apply_reports(conn=conn, section=ReportsSection(reports=full.safety.reports))
    revision = registry.revision
    if revision is None and (rules or alarms or compliance or schedules["put"] or schedules["disabled"]):
        digest = hashlib.sha256(full.safety.model_dump_json(by_alias=True).encode()).hexdigest()
        revision = record_revision(
            conn,
            source=source,
            sha256=digest,
            summary={
                "rules_revision": rules,
                "alarms_revision": alarms,
                "compliance_revision": compliance,
                "report_schedules": schedules,
            },
        )
    return FullSummary(registry, rules, alarms, revision, compliance, schedules)
