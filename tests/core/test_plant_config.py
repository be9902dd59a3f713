"""The plant configuration: the demo plant is valid; bad files are refused with file, line and field;
applying is idempotent, exports round-trip, and items dropped from the file are retired."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from core.plant import apply_plant, dump_yaml, export_plant, load_plant
from core.yamlconf import ConfigError
from tests.support import REPO_ROOT, small_plant

DEMO = REPO_ROOT / "examples" / "demo-plant.yaml"

GOOD = """\
version: 1
sites:
  - code: s1
    name: 工厂
    areas:
      - code: formation
        name: 化成
        process: formation
        devices:
          - code: gas-01
            name: 探测器
            kind: gas_detector
            points:
              - {key: h2_ppm, name: 氢气, quantity: h2}
              - {key: energy_kwh, name: 电能, quantity: energy}
    meters:
      - {code: e1, name: 总表, medium: electricity, point: gas-01/energy_kwh}
"""


def _refusal(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "plant.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plant(path)
    assert all(str(path) in problem for problem in info.value.problems)
    return info.value.problems


def test_demo_plant_covers_every_process_area_with_its_hazards() -> None:
    plant = load_plant(DEMO)
    site = plant.sites[0]
    processes = {area.process.value for area in site.areas}
    assert {
        "coating",
        "drying",
        "rolling",
        "winding_stacking",
        "welding",
        "injection",
        "formation",
        "grading",
        "aging",
        "pack",
        "warehouse",
        "electrolyte_store",
        "hazwaste_store",
        "wastewater",
        "voc_incinerator",
        "utilities",
    } <= processes
    quantities = {(a.process.value, p.quantity) for a in site.areas for d in a.devices for p in d.points}
    for needed in [
        ("injection", "dew_point"),
        ("injection", "voc"),
        ("formation", "h2"),
        ("formation", "co"),
        ("formation", "smoke"),
        ("formation", "vibration"),
        ("aging", "vibration"),
        ("voc_incinerator", "temperature"),
        ("voc_incinerator", "nmhc"),
        ("wastewater", "ph"),
        ("wastewater", "cod"),
        ("wastewater", "ammonia"),
        ("wastewater", "fluoride"),
        ("wastewater", "nickel"),
        ("wastewater", "cobalt"),
        ("wastewater", "flow"),
    ]:
        assert needed in quantities, needed
    assert {m.medium.value for m in site.meters} == {
        "electricity",
        "water",
        "compressed_air",
        "nitrogen",
        "steam",
        "natural_gas",
    }
    assert any(m.parent for m in site.meters)


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(GOOD, encoding="utf-8")
    point = load_plant(path).sites[0].areas[0].devices[0].points[0]
    assert (point.unit, point.kind, point.range) == ("ppm", "gauge", (0.0, 40000.0))


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (("process: formation", "process: forming"), 8, "sites[0].areas[0].process", "formation"),
        (
            ("{key: h2_ppm, name: 氢气, quantity: h2}", "{key: h2_ppm, name: 氢气, quantity: hydrogen}"),
            14,
            "sites[0].areas[0].devices[0].points[0]",
            "unknown quantity",
        ),
        (
            ("{key: h2_ppm, name: 氢气, quantity: h2}", "{key: h2, name: 氢气, quantity: h2}"),
            14,
            "sites[0].areas[0].devices[0].points[0]",
            "unit",
        ),
        (
            ("{key: h2_ppm, name: 氢气, quantity: h2}", "{key: h2_ppm, name: 氢气, quantity: h2, range: [5, 1]}"),
            14,
            "sites[0].areas[0].devices[0].points[0]",
            "empty",
        ),
        (
            ("kind: gas_detector", "kind: gas_detector\n            colour: red"),
            13,
            "sites[0].areas[0].devices[0].colour",
            "Extra inputs",
        ),
        (("point: gas-01/energy_kwh", "point: gas-01/h2_ppm"), 17, "sites[0].meters[0].point", "counter"),
        (
            ("point: gas-01/energy_kwh}", "point: gas-01/energy_kwh, parent: e9}"),
            17,
            "sites[0].meters[0].parent",
            "no meter",
        ),
        (("  - code: s1", "  - code: S 1"), 3, "sites[0].code", "pattern"),
    ],
)
def test_bad_file_names_file_line_and_field(tmp_path: Path, change, line, field, words) -> None:
    problems = _refusal(tmp_path, GOOD.replace(*change))
    assert any(f":{line}: {field}" in p and words in p for p in problems), problems


def test_duplicate_codes_are_refused_at_their_line(tmp_path: Path) -> None:
    text = GOOD.replace(
        "              - {key: energy_kwh",
        "              - {key: h2_ppm, name: x, quantity: h2}\n              - {key: energy_kwh",
    )
    problems = _refusal(tmp_path, text)
    assert any(":15: sites[0].areas[0].devices[0].points[1].key" in p and "twice" in p for p in problems)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    problems = _refusal(tmp_path, GOOD.replace("name: 探测器", "name: [探测器"))
    assert any("invalid YAML" in p for p in problems)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_plant(tmp_path / "nope.yaml")


@pytest.mark.db
def test_apply_is_idempotent_and_export_round_trips(conn: psycopg.Connection) -> None:
    plant = load_plant(DEMO)
    first = apply_plant(conn=conn, plant=plant, source="demo")
    assert first.created["point"] == sum(len(d.points) for a in plant.sites[0].areas for d in a.devices)
    assert first.revision is not None
    second = apply_plant(conn=conn, plant=plant, source="demo")
    assert not second.changed and second.revision is None
    exported = export_plant(conn=conn)
    assert exported == plant.model_copy(update={"include": []})  # the registry does not hold the included files
    assert not apply_plant(conn=conn, plant=load_plant_from_text(dump_yaml(exported)), source="export").changed


def load_plant_from_text(text: str):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as fh:
        fh.write(text)
    return load_plant(fh.name)


@pytest.mark.db
def test_dropped_items_are_retired_and_come_back(conn: psycopg.Connection) -> None:
    apply_plant(conn=conn, plant=small_plant("s9", devices=2), source="a")
    summary = apply_plant(conn=conn, plant=small_plant("s9", devices=1), source="b")
    assert summary.retired["device"] == 1
    retired = conn.execute("SELECT count(*) FROM device WHERE retired_at IS NOT NULL").fetchone()[0]
    assert retired == 1
    assert len(export_plant(conn=conn).sites[0].areas[0].devices) == 1
    summary = apply_plant(conn=conn, plant=small_plant("s9", devices=2), source="c")
    assert summary.updated["device"] == 1 and summary.created["device"] == 0
    assert conn.execute("SELECT count(*) FROM device WHERE retired_at IS NOT NULL").fetchone()[0] == 0


@pytest.mark.db
def test_a_change_is_an_update_with_a_revision(conn: psycopg.Connection) -> None:
    plant = small_plant("s8")
    apply_plant(conn=conn, plant=plant, source="a")
    plant.sites[0].areas[0].devices[0].points[0].range = (0.0, 2000.0)
    summary = apply_plant(conn=conn, plant=plant, source="b")
    assert summary.updated == {"point": 1}
    assert conn.execute("SELECT valid_max FROM point WHERE key = 'h2_ppm' ORDER BY id LIMIT 1").fetchone()[0] == 2000
    assert conn.execute("SELECT count(*) FROM config_revision").fetchone()[0] == 2
