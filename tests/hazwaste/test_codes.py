"""The list editions: every battery-plant default code is in each edition a site may use, a site's edition
reaches its waste types, and switching editions names every code the new edition lacks (with its mapping)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hazwaste import codes
from hazwaste.catalogue import HazwasteSection, HazwasteSite
from tests.hazwaste.world import SECTION

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-hazwaste.yaml"


def _default_codes() -> set[str]:
    demo = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    return (
        set(codes.BATTERY_PLANT_CODES)
        | {w["waste_code"] for site in demo["hazwaste"] for w in site["waste_types"]}
        | {w["waste_code"] for w in SECTION["waste_types"]}
    )


@pytest.mark.parametrize("edition", codes.EDITIONS)
def test_every_battery_plant_default_code_is_in_each_edition(edition: int) -> None:
    missing = sorted(c for c in _default_codes() if codes.lookup(c, edition) is None)
    assert missing == []
    assert codes.switch_edition(sorted(_default_codes()), 2021, edition) == []
    # the demo plant validates with either edition named for the site
    demo = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    for site in demo["hazwaste"]:
        site["edition"] = edition
    parsed = HazwasteSection.model_validate(demo)
    assert {w.edition for s in parsed.hazwaste for w in s.waste_types} == {edition}


def test_2025_entries_are_marked_unconfirmed_and_li_ion_cells_are_not_900_044_49() -> None:
    # standards.md 4.1 gives no 2025 text: the carried-over entries say so, and no mapping is invented
    assert all(not e.confirmed for e in codes.LIST[2025].values())
    assert codes.EDITION_MAP[(2021, 2025)] == {}
    assert "900-044-49" not in codes.BATTERY_PLANT_CODES  # Cd-Ni batteries, not Li-ion cells (standards.md 4.1)


def test_switching_edition_names_each_absent_code_and_its_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    # a 2025 list without 900-039-49 and 900-041-49, the first mapped to a (hypothetical) new code
    new = dict(codes.LIST[2025])
    new.pop("900-039-49")
    new.pop("900-041-49")
    new["900-039-48"] = codes.ListEntry("900-039-48", "HW48", "test entry", ("T",), 2025, False)
    new.pop("900-404-06")
    monkeypatch.setitem(codes.LIST, 2025, new)
    monkeypatch.setitem(codes.EDITION_MAP, (2021, 2025), {"900-039-49": "900-039-48", "900-404-06": None})
    found = {
        f.code: f for f in codes.switch_edition(["900-039-49", "900-041-49", "900-404-06", "900-402-06"], 2021, 2025)
    }
    assert set(found) == {"900-039-49", "900-041-49", "900-404-06"}
    assert (
        found["900-039-49"].replacement == "900-039-48"
        and "is 900-039-48 in the 2025 list" in found["900-039-49"].message
    )
    assert "no mapping is known" in found["900-041-49"].message
    assert "dropped from the 2025 list" in found["900-404-06"].message
    with pytest.raises(ValueError, match="waste type 'packaging': 900-041-49 is not in the 2025 list"):
        HazwasteSite.model_validate({"site": "s", **SECTION, "edition": 2025})
    with pytest.raises(ValueError, match="unknown edition 2030"):
        codes.switch_edition(["900-041-49"], 2021, 2030)
