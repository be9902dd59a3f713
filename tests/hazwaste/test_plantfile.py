"""The optional ``hazwaste:`` section of the plant file: validated with the rest, applied idempotently; plant
files without it stay valid and leave the catalogue alone."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cli.plantfile import apply_full, load_full
from core.yamlconf import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PLANT = """version: 1
sites:
  - code: {site}
    name: 测试厂
    areas:
      - {{code: hw-store, name: 危废库, process: hazwaste_store}}
"""
SECTION = """hazwaste:
  - site: {site}
    waste_types:
      - {{code: carbon, name: 废活性炭, waste_code: 900-039-49}}
      - {{code: acid, name: 废酸, waste_code: 900-349-34, incompatible_with: [carbon]}}
    facilities:
      - {{code: WH-1, name: 危废库, kind: warehouse, capacity_kg: 1000, area: {area}}}
"""


def test_demo_plant_carries_a_valid_catalogue() -> None:
    full = load_full(ROOT / "examples" / "demo-plant.yaml")
    (site,) = full.safety.hazwaste
    assert {w.code for w in site.waste_types} >= {"electrolyte", "carbon", "packaging"}
    assert next(w for w in site.waste_types if w.code == "carbon").hazards == ["T"]


def test_unknown_area_is_named_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT.format(site="p1") + SECTION.format(site="p1", area="nowhere"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_full(path)
    assert "no area 'nowhere'" in str(exc.value) and "plant.yaml:" in str(exc.value)


@pytest.mark.db
def test_section_applies_idempotently_and_files_without_it_leave_it(tmp_path: Path, database_url: str) -> None:
    with_section, without = tmp_path / "a.yaml", tmp_path / "b.yaml"
    with_section.write_text(PLANT.format(site="p1") + SECTION.format(site="p1", area="hw-store"), encoding="utf-8")
    without.write_text(PLANT.format(site="p1"), encoding="utf-8")
    with psycopg.connect(database_url) as conn:
        for _ in range(2):
            apply_full(conn=conn, full=load_full(with_section), source="test")
        rows = conn.execute("SELECT code, category, incompatible_with FROM hw_waste_type ORDER BY code").fetchall()
        assert rows == [("acid", "HW34", ["carbon"]), ("carbon", "HW49", [])]
        apply_full(conn=conn, full=load_full(without), source="test")
        assert conn.execute("SELECT count(*) FROM hw_waste_type WHERE retired_at IS NULL").fetchone()[0] == 2
        assert conn.execute("SELECT area FROM hw_facility").fetchone()[0] == "hw-store"
