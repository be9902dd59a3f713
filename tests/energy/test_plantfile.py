"""Virtual meters and balance limits in the plant file: refused with file, line and field; applied and exported."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.plant import apply_plant, export_plant, load_plant
from core.yamlconf import ConfigError
from tests.support import unique_code

BASE = """\
version: 1
sites:
  - code: {site}
    name: 工厂
    areas:
      - code: coating
        name: 涂布
        process: coating
        devices:
          - code: em-1
            name: 电表
            kind: energy_meter
            points:
              - {{key: energy_kwh, name: 电能, quantity: energy}}
          - code: em-2
            name: 电表
            kind: energy_meter
            points:
              - {{key: energy_kwh, name: 电能, quantity: energy}}
              - {{key: water_m3, name: 水, quantity: volume}}
    meters:
      - {{code: main, name: 总表, medium: electricity, point: em-1/energy_kwh, loss_limit_pct: 5}}
      - {{code: sub, name: 分表, medium: electricity, point: em-2/energy_kwh, parent: main, area: coating}}
      - {{code: w, name: 水表, medium: water, point: em-2/water_m3}}
      - {{code: rest, name: 未计量, medium: electricity, formula: "main - sub", area: coating}}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "plant.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plant(path)
    return info.value.problems


@pytest.mark.parametrize(
    "old, new, line, field, words",
    [
        ('formula: "main - sub"', 'formula: "main - nope"', 25, "sites[0].meters[3].formula", "no meter 'nope'"),
        ('formula: "main - sub"', 'formula: "main - w"', 25, "sites[0].meters[3].formula", "water"),
        ('formula: "main - sub"', 'formula: "main -sub"', 25, "sites[0].meters[3]", "spaces"),
        (
            'formula: "main - sub"',
            'formula: "main - sub", point: em-1/energy_kwh',
            25,
            "sites[0].meters[3]",
            "exactly one",
        ),
        (
            "point: em-2/water_m3}",
            "point: em-2/water_m3, loss_limit_pct: 5}",
            24,
            "sites[0].meters[2].loss_limit_pct",
            "no sub-meters",
        ),
        ("parent: main,", "parent: rest,", 23, "sites[0].meters[1].parent", "virtual"),
    ],
)
def test_bad_virtual_meters_and_limits_name_line_and_field(tmp_path: Path, old, new, line, field, words) -> None:
    problems = _problems(tmp_path, BASE.format(site="s1").replace(old, new))
    assert any(f":{line}: {field}" in p and words in p for p in problems), problems


def test_virtual_meter_and_limit_apply_and_export(conn, tmp_path: Path) -> None:
    site = unique_code("pf")
    path = tmp_path / "plant.yaml"
    path.write_text(BASE.format(site=site), encoding="utf-8")
    plant = load_plant(path)
    apply_plant(conn=conn, plant=plant, source="test")
    assert conn.execute(
        "SELECT l.loss_pct_max, l.hold_minutes FROM energy_balance_limit l JOIN meter m "
        "ON m.id = l.meter_id WHERE m.code = 'main'"
    ).fetchall() == [(5.0, 60)]
    again = apply_plant(conn=conn, plant=plant, source="test")
    assert not again.changed
    meters = {m.code: m for m in export_plant(conn=conn, site=site).sites[0].meters}
    assert meters["rest"].formula == "main - sub" and meters["rest"].point is None
    assert meters["main"].loss_limit_pct == 5.0
