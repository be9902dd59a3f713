"""Report schedules in the plant file (``reports:`` per site): bad entries refused with file, line and field; applied
idempotently (created, updated, removed ones disabled, each change audited once); schedules of the console left
alone. And the same schedules over the API (/api/v1/reports/schedules), where the plant file's are read only."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cli.plantfile import apply_full, load_full
from core.yamlconf import ConfigError
from reports import schedules
from tests.fuzzing import any_json, budget

ROOT = Path(__file__).resolve().parents[2]
PLANT = """version: 1
sites:
  - code: p1
    name: 测试厂
    timezone: Asia/Shanghai
    areas:
      - {code: formation, name: 化成, process: formation}
      - {code: wastewater, name: 污水站, process: wastewater}
"""
SECTION = """reports:
  - site: p1
    schedules:
      - name: p1-alarms
        kind: alarm_month
        cadence: monthly
        time: "06:30"
        grace_minutes: 90
        params: {areas: [formation], language: en, formats: [pdf, xlsx]}
        recipients: [ehs-mail:ehs@example.com, ding]
      - name: p1-incidents
        kind: incident
        cadence: after_incident
        params: {formats: [pdf]}
"""


def _write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_plant_carries_report_schedules() -> None:
    full = load_full(ROOT / "examples" / "demo-plant.yaml")
    (site,) = full.safety.reports
    assert site.site == "cz01"
    assert {s.cadence for s in site.schedules} == {"monthly", "daily", "after_incident"}


def test_a_valid_section_becomes_schedule_specs(tmp_path: Path) -> None:
    full = load_full(_write(tmp_path, PLANT + SECTION))
    alarms, incidents = full.safety.reports[0].schedules
    spec = alarms.spec("p1")
    assert (spec.every, spec.at_local, spec.grace, spec.lang) == ("monthly", time(6, 30), timedelta(minutes=90), "en")
    assert (spec.areas, spec.deliver_to, spec.managed_by) == (
        ("formation",),
        ("ehs-mail:ehs@example.com", "ding"),
        "config",
    )
    assert (incidents.spec("p1").every, incidents.spec("p1").at_local) == ("incident", time(6))


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("kind: alarm_month", "kind: alarm_year", 6, "reports[0].schedules[0].kind", "unknown report kind"),
        ("cadence: monthly", "cadence: hourly", 7, "reports[0].schedules[0].cadence", "daily"),
        ('time: "06:30"', 'time: "25:00"', 8, "reports[0].schedules[0].time", ""),
        ("formats: [pdf, xlsx]", "formats: [pdf, docx]", 10, "reports[0].schedules[0].params.formats", "docx"),
        ("language: en", "language: fr", 10, "reports[0].schedules[0].params.language", "zh-CN"),
        ("ehs-mail:ehs@example.com", "ehs-mail:not an address", 11, "reports[0].schedules[0].recipients[0]", ""),
        ("areas: [formation]", "areas: [nowhere]", 10, "reports[0].schedules[0].params.areas[0]", "no area 'nowhere'"),
        ("kind: alarm_month", "kind: compliance_day", 7, "reports[0].schedules[0].cadence", "scheduled daily"),
        ("cadence: after_incident", "cadence: weekly", 14, "reports[0].schedules[1].cadence", "after_incident"),
        ("  - site: p1", "  - site: p9", 3, "reports[0].site", "no site 'p9'"),
        ("name: p1-incidents", "name: p1-alarms", 12, "reports[0].schedules[1].name", "named twice"),
    ],
)
def test_bad_entries_are_refused_with_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in SECTION
    path = _write(tmp_path, PLANT + SECTION.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_full(path)
    (problem,) = exc.value.problems
    assert problem.startswith(f"{path}:{line - 1 + PLANT.count(chr(10))}: {field}: "), problem
    assert message in problem


def _schedules(conn: psycopg.Connection) -> dict[str, tuple]:
    found = conn.execute(
        "SELECT name, enabled, managed_by, every, at_local, grace, areas, deliver_to FROM report_schedule"
    ).fetchall()
    return {row[0]: row[1:] for row in found}


def _audits(conn: psycopg.Connection) -> list[tuple[str, str]]:
    found = conn.execute(
        "SELECT action, target FROM audit_entry WHERE action LIKE 'config.report_schedule.%' ORDER BY seq"
    ).fetchall()
    return [(a, t) for a, t in found]


@pytest.mark.db
def test_the_section_applies_idempotently_and_disables_what_it_drops(tmp_path: Path, database_url: str) -> None:
    full = _write(tmp_path, PLANT + SECTION, "full.yaml")
    section = SECTION.replace("grace_minutes: 90", "grace_minutes: 30")
    changed = _write(tmp_path, PLANT + section, "changed.yaml")
    dropped = _write(tmp_path, PLANT + section.split("      - name: p1-incidents")[0], "dropped.yaml")
    with psycopg.connect(database_url) as conn:
        first = apply_full(conn=conn, full=load_full(full), source="test")
        assert first.report_schedules == {"put": ["p1-alarms", "p1-incidents"], "disabled": []}
        schedules.put_schedule(  # made from the console: the file leaves it alone
            conn, spec=schedules.ScheduleSpec("p1-console", "device_health", "p1", "daily"), actor="cli:admin"
        )
        again = apply_full(conn=conn, full=load_full(full), source="test")
        assert again.report_schedules == {"put": [], "disabled": []}
        assert len(_audits(conn)) == 3  # two from the file, one from the console: the second apply wrote nothing
        assert _schedules(conn)["p1-alarms"] == (
            True,
            "config",
            "monthly",
            time(6, 30),
            timedelta(minutes=90),
            ["formation"],
            ["ehs-mail:ehs@example.com", "ding"],
        )
        assert apply_full(conn=conn, full=load_full(changed), source="test").report_schedules["put"] == ["p1-alarms"]
        assert _schedules(conn)["p1-alarms"][4] == timedelta(minutes=30)
        gone = apply_full(conn=conn, full=load_full(dropped), source="test")
        assert gone.report_schedules == {"put": [], "disabled": ["p1-incidents"]}
        assert gone.changed  # a configuration revision records it
        now = _schedules(conn)
        assert (now["p1-incidents"][0], now["p1-alarms"][0], now["p1-console"][0]) == (False, True, True)
        assert apply_full(conn=conn, full=load_full(dropped), source="test").report_schedules == {
            "put": [],
            "disabled": [],
        }
        assert _audits(conn)[-2:] == [
            ("config.report_schedule.put", "report_schedule:p1-alarms"),
            ("config.report_schedule.disable", "report_schedule:p1-incidents"),
        ]
        # applied again with it: enabled again
        assert apply_full(conn=conn, full=load_full(full), source="test").report_schedules["put"] == [
            "p1-alarms",
            "p1-incidents",
        ]
        assert _schedules(conn)["p1-incidents"][0] is True


_FIELDS = ("name", "kind", "cadence", "time", "grace_minutes", "params", "recipients", "extra")


@budget(150)
@given(
    fields=st.dictionaries(st.sampled_from(_FIELDS), any_json, max_size=8),
    params=st.dictionaries(st.sampled_from(("areas", "language", "formats", "x")), any_json, max_size=4),
)
def test_any_schedule_entry_is_accepted_or_refused_with_its_field(tmp_path_factory, fields, params) -> None:
    """Whatever a plant file's schedule entry holds, loading it either succeeds or raises ConfigError naming the
    file and a field of the section (never another exception)."""
    entry = {**fields, **({"params": params} if "params" in fields else {})}
    text = PLANT + yaml.safe_dump({"reports": [{"site": "p1", "schedules": [entry]}]}, allow_unicode=True)
    path = tmp_path_factory.mktemp("plant") / "plant.yaml"
    try:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        return
    try:
        full = load_full(path)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(f"{path}:") and ": reports[0]" in p for p in exc.problems)
        return
    (schedule,) = full.safety.reports[0].schedules
    spec = schedule.spec("p1")
    schedules.check_spec(spec)  # what the file accepted, the scheduler can run
