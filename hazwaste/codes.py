"""The National Hazardous Waste List (国家危险废物名录) as versioned data: the entries a Li-ion plant uses.

Source: standards.md section 4.1 (2021 edition, in force 2021-01-01, [CONFIRMED-PRIMARY]). The 2025 edition
(adopted 2024-11-08, in force 2025-01-01, [CONFIRMED-SECONDARY]) exists, but standards.md gives none of its text:
no code it changed, added or removed (section 8 lists "the 2025 名录 code changes" as still to check). So its
entries below are the 2021 ones carried over and marked ``confirmed=False``, and ``EDITION_MAP`` (a code of one
edition -> its code in the next, or None when the entry was dropped) is empty. The mechanism is in place: a site
names its edition (``HazwasteSite.edition``), every waste type is validated against it, and ``switch_edition``
names each code that is absent from the new edition with its mapped code where the table gives one; filling in
the 2025 changes is a data change here, once they are confirmed.
Code format: 8 digits = industry (3) + sequence (3) + category HWxx (2); ``900-000-xx`` is waste found hazardous
by testing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HAZARDS = ("T", "C", "I", "R", "In")  # toxicity, corrosivity, ignitability, reactivity, infectivity
HAZARD_NAMES = {"T": "毒性", "C": "腐蚀性", "I": "易燃性", "R": "反应性", "In": "感染性"}
CODE_RE = re.compile(r"^(\d{3})-(\d{3})-(\d{2})$")
EDITIONS = (2021, 2025)


@dataclass(frozen=True, slots=True)
class ListEntry:
    code: str
    category: str
    description: str
    hazards: tuple[str, ...]
    edition: int
    confirmed: bool = True


_2021 = [
    ("900-402-06", "HW06", "废有机溶剂（清洗、萃取、溶剂或反应介质）", "T,I,R"),
    ("900-404-06", "HW06", "其他列入《危险化学品目录》的废有机溶剂", "T,I,R"),
    ("900-405-06", "HW06", "溶剂再生处理产生的废活性炭", "T,I,R"),
    ("900-407-06", "HW06", "溶剂再生处理产生的釜底残渣", "T,I,R"),
    ("900-409-06", "HW06", "溶剂再生处理产生的污泥", "T"),
    ("900-249-08", "HW08", "其他废矿物油及沾染矿物油的包装物", "T,I"),
    ("900-214-08", "HW08", "车辆、机械维修和拆解产生的废发动机油、制动器油、液压油", "T,I"),
    ("900-217-08", "HW08", "废齿轮油", "T,I"),
    ("900-218-08", "HW08", "废液压油", "T,I"),
    ("900-219-08", "HW08", "废冷冻压缩机油", "T,I"),
    ("900-014-13", "HW13", "废弃的粘合剂和密封剂（不包括水基型和热熔型）", "T"),
    ("900-015-13", "HW13", "工业废水处理产生的废离子交换树脂", "T"),
    ("900-252-12", "HW12", "使用油漆、有机溶剂进行喷漆、上漆过程中产生的废物", "T,I"),
    ("900-256-12", "HW12", "使用有机溶剂清洗去除的废油漆", "T,I,C"),
    ("900-300-34", "HW34", "使用酸进行清洗产生的废酸液", "C,T"),
    ("900-349-34", "HW34", "其他废酸液", "C,T"),
    ("900-356-35", "HW35", "使用碱进行清洗产生的废碱液", "C,T"),
    ("900-399-35", "HW35", "其他废碱", "C,T"),
    ("900-037-46", "HW46", "废镍催化剂", "T,I"),
    ("900-039-49", "HW49", "烟气、VOCs治理过程产生的废活性炭", "T"),
    ("900-041-49", "HW49", "含有或沾染毒性、感染性危险废物的废弃包装物、容器、过滤吸附介质", "T,In"),
    ("900-042-49", "HW49", "环境事件及其处理过程中产生的沾染危险化学品、危险废物的废物", "T,C,I,R,In"),
    ("900-044-49", "HW49", "废弃的镉镍电池、荧光粉和阴极射线管", "T"),
    ("900-045-49", "HW49", "废电路板（包括元器件）", "T"),
    ("900-046-49", "HW49", "离子交换装置再生过程中产生的废水处理污泥", "T"),
    ("900-047-49", "HW49", "研究、开发和教学活动中产生的实验室废物", "T,C,I,R"),
    ("772-006-49", "HW49", "采用物理、化学、物理化学或生物方法处理危险废物产生的废水处理污泥、残渣", "T,In"),
    ("900-999-49", "HW49", "被所有者申报废弃的，列入《危险化学品目录》中的危险化学品", "T"),
]

LIST: dict[int, dict[str, ListEntry]] = {
    2021: {c: ListEntry(c, cat, d, tuple(h.split(",")), 2021) for c, cat, d, h in _2021},
    2025: {c: ListEntry(c, cat, d, tuple(h.split(",")), 2025, confirmed=False) for c, cat, d, h in _2021},
}


#: (from edition, to edition) -> {code in the old edition: its code in the new one, or None when dropped}.
#: Empty: standards.md states no 2025 change (see the module text); add rows only from a confirmed source.
EDITION_MAP: dict[tuple[int, int], dict[str, str | None]] = {(2021, 2025): {}}

#: The codes a Li-ion battery plant uses by default (standards.md 4.1's table, "Typical Li-ion source"): every
#: one must exist in each edition a site may choose (tests/hazwaste/test_codes.py).
BATTERY_PLANT_CODES = (
    "900-402-06",  # cleaning solvents
    "900-404-06",  # electrolyte solvents, NMP (the mapping is common EIA practice, [UNCONFIRMED])
    "900-405-06",  # NMP recovery residues
    "900-407-06",
    "900-409-06",
    "900-249-08",
    "900-214-08",
    "900-217-08",
    "900-218-08",
    "900-219-08",
    "900-014-13",
    "900-015-13",
    "900-039-49",  # VOC adsorber activated carbon
    "900-041-49",  # electrolyte drums, NMP totes, filters
    "900-042-49",  # spill clean-up
    "900-045-49",  # BMS boards
    "900-047-49",  # QC lab
    "900-999-49",  # expired electrolyte, LiPF6
)


@dataclass(frozen=True, slots=True)
class EditionFinding:
    """A code of a site's catalogue that the new edition does not list as it is."""

    code: str
    replacement: str | None  # the mapped code, when EDITION_MAP gives one
    message: str


def switch_edition(codes: list[str] | tuple[str, ...], old: int, new: int) -> list[EditionFinding]:
    """What changes for these codes when a site moves from edition ``old`` to ``new``: one finding per code that
    ``new`` does not list (with its mapped code where EDITION_MAP gives one). Empty: every code carries over."""
    if old not in LIST or new not in LIST:
        raise ValueError(f"unknown edition {old if old not in LIST else new}; known: {', '.join(map(str, EDITIONS))}")
    mapping = EDITION_MAP.get((old, new), {})
    out = []
    for code in dict.fromkeys(codes):
        mapped = mapping.get(code, code)
        if code in mapping and mapped is None:
            out.append(EditionFinding(code, None, f"{code} is dropped from the {new} list: re-classify this waste"))
        elif lookup(mapped, new) is None:
            out.append(
                EditionFinding(
                    code, None, f"{code} is not in the {new} list and no mapping is known: re-classify this waste"
                )
            )
        elif mapped != code:
            out.append(EditionFinding(code, mapped, f"{code} of the {old} list is {mapped} in the {new} list"))
    return out


def lookup(code: str, edition: int) -> ListEntry | None:
    """The list entry of ``code`` in ``edition``; ``900-000-xx`` (hazardous by testing) is always accepted."""
    if edition not in LIST:
        raise ValueError(f"unknown edition {edition}; known: {', '.join(map(str, EDITIONS))}")
    match = CODE_RE.match(code)
    if match is None:
        return None
    if match.group(1, 2) == ("900", "000"):
        return ListEntry(code, f"HW{match.group(3)}", "经鉴别具有危险特性的废物", HAZARDS, edition)
    return LIST[edition].get(code)


def category_of(code: str) -> str:
    """The category HWxx that a code's last two digits name."""
    match = CODE_RE.match(code)
    if match is None:
        raise ValueError(f"{code!r} is not a waste code like 900-041-49")
    return f"HW{match.group(3)}"


def in_scope(code: str, scope: list[str] | tuple[str, ...]) -> bool:
    """True when a licence scope (waste codes and/or whole categories HWxx) covers ``code``."""
    return code in scope or category_of(code) in scope
