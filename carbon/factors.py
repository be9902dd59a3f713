"""The emission-factor library: versioned CSV files in ``carbon/data`` (standards.md section 5), parsed with every
error naming file, line and field, and the rules that pick a factor for an accounting year.

Files (UTF-8 CSV with a header):

- ``grid.csv``: MEE/NBS electricity factors by ``region_level`` (national, regional, province), ``region_code``,
  ``data_year``, ``basis`` (average, excl_market_nonfossil, fossil), kgCO2/kWh, publication reference and date;
- ``fuel.csv``: GB/T 32150 / 32151 fuel parameters; the factor is NCV × CC × OF × 44/12 (``fuel_factor``);
- ``heat.csv``: purchased steam and heat in kgCO2 per GJ;
- ``gwp.csv``: GWP100 by gas and IPCC report (AR5, AR6), for refrigerant and other leaks.

``VERSION`` holds the library's version; every ledger figure names the row key and version it used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
REGION_LEVELS = ("province", "regional", "national")  # most specific first
GRID_BASES = ("average", "excl_market_nonfossil", "fossil")
GWP_BASES = ("AR5", "AR6")
#: CO2 per carbon by mass (GB/T 32150: the 44/12 of the fuel formula)
CO2_PER_C = 44.0 / 12.0
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
FILES = ("grid.csv", "fuel.csv", "heat.csv", "gwp.csv")


class FactorFileError(ValueError):
    """A factor file that cannot be used; ``problems`` holds one ``file:line: field: message`` per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class Factor:
    """One factor row: ``value`` in kgCO2e per ``unit`` (a GWP is dimensionless)."""

    row_key: str
    kind: str  # grid | fuel | heat | gwp
    code: str
    value: float
    unit: str
    publication_ref: str
    region_level: str | None = None
    data_year: int | None = None
    basis: str | None = None
    published_on: date | None = None
    detail: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FactorLibrary:
    version: str
    factors: tuple[Factor, ...]
    sha256: str = ""

    def by_key(self) -> dict[str, Factor]:
        return {f.row_key: f for f in self.factors}


def fuel_factor(ncv_gj_per_unit: float, cc_tc_per_tj: float, oxidation: float) -> float:
    """kgCO2 per unit of fuel by GB/T 32150: AD × NCV × CC × OF × 44/12 with AD = 1 unit.

    ``ncv_gj_per_unit`` GJ per unit (Nm3, t), ``cc_tc_per_tj`` tC per TJ (= kgC per GJ), ``oxidation`` 0..1.
    GJ × kgC/GJ gives kgC; × 44/12 gives kgCO2.
    """
    return ncv_gj_per_unit * cc_tc_per_tj * oxidation * CO2_PER_C


def _num(
    raw: str, where: str, problems: list[str], *, lo: float = 0.0, hi: float = math.inf, integer: bool = False
) -> float | None:
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        problems.append(f"{where}: not a {'whole ' if integer else ''}number: {raw!r}")
        return None
    if not (math.isfinite(value) and lo <= value <= hi):
        problems.append(f"{where}: {raw!r} must lie between {lo:g} and {hi:g}")
        return None
    return value


def _text(
    raw: str | None,
    where: str,
    problems: list[str],
    *,
    pattern: re.Pattern | None = None,
    choices: Iterable[str] | None = None,
    max_len: int = 300,
) -> str | None:
    value = (raw or "").strip()
    if not value:
        problems.append(f"{where}: empty")
        return None
    if len(value) > max_len:
        problems.append(f"{where}: longer than {max_len} characters")
        return None
    if choices is not None and value not in tuple(choices):
        problems.append(f"{where}: {value!r} is not one of {', '.join(choices)}")
        return None
    if pattern is not None and not pattern.match(value):
        problems.append(f"{where}: {value!r} is not a valid code")
        return None
    return value


def _rows(name: str, text: str, columns: tuple[str, ...], problems: list[str]) -> list[tuple[int, dict[str, str]]]:
    if "\x00" in text:
        problems.append(f"{name}:1: the file contains NUL characters")
        return []
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.append(f"{name}:1: {exc}")
        return []
    if header is None or [h.strip() for h in header] != list(columns):
        problems.append(f"{name}:1: header must be {','.join(columns)}")
        return []
    out = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(columns):
                problems.append(f"{name}:{line}: {len(record)} fields, expected {len(columns)}")
                continue
            out.append((line, dict(zip(columns, record, strict=True))))
    except csv.Error as exc:
        problems.append(f"{name}:{reader.line_num}: {exc}")
    return out


def _grid(text: str, problems: list[str]) -> list[Factor]:
    cols = ("region_level", "region_code", "data_year", "basis", "value_kg_per_kwh", "publication_ref", "published_on")
    out = []
    for line, r in _rows("grid.csv", text, cols, problems):
        w = f"grid.csv:{line}"
        level = _text(r["region_level"], f"{w}: region_level", problems, choices=REGION_LEVELS)
        region = _text(r["region_code"], f"{w}: region_code", problems, pattern=_CODE)
        year = _num(r["data_year"], f"{w}: data_year", problems, lo=1990, hi=2100, integer=True)
        basis = _text(r["basis"], f"{w}: basis", problems, choices=GRID_BASES)
        value = _num(r["value_kg_per_kwh"], f"{w}: value_kg_per_kwh", problems, hi=5.0)
        ref = _text(r["publication_ref"], f"{w}: publication_ref", problems)
        published = None
        if (r["published_on"] or "").strip():
            try:
                published = date.fromisoformat(r["published_on"].strip())
            except ValueError:
                problems.append(f"{w}: published_on: not a date (YYYY-MM-DD): {r['published_on']!r}")
        if None in (level, region, year, basis, value, ref):
            continue
        out.append(
            Factor(
                f"grid:{region}:{int(year)}:{basis}",
                "grid",
                region,
                value,
                "kWh",
                ref,
                region_level=level,
                data_year=int(year),
                basis=basis,
                published_on=published,
            )
        )
    return out


def _fuel(text: str, problems: list[str]) -> list[Factor]:
    cols = ("code", "name", "unit", "ncv_gj_per_unit", "cc_tc_per_tj", "oxidation", "publication_ref")
    out = []
    for line, r in _rows("fuel.csv", text, cols, problems):
        w = f"fuel.csv:{line}"
        code = _text(r["code"], f"{w}: code", problems, pattern=_CODE)
        _text(r["name"], f"{w}: name", problems)
        unit = _text(r["unit"], f"{w}: unit", problems, pattern=_CODE)
        ncv = _num(r["ncv_gj_per_unit"], f"{w}: ncv_gj_per_unit", problems, hi=1000.0)
        cc = _num(r["cc_tc_per_tj"], f"{w}: cc_tc_per_tj", problems, hi=100.0)
        of = _num(r["oxidation"], f"{w}: oxidation", problems, hi=1.0)
        ref = _text(r["publication_ref"], f"{w}: publication_ref", problems)
        if None in (code, unit, ncv, cc, of, ref):
            continue
        out.append(
            Factor(
                f"fuel:{code}",
                "fuel",
                code,
                fuel_factor(ncv, cc, of),
                unit,
                ref,
                detail={"ncv_gj_per_unit": ncv, "cc_tc_per_tj": cc, "oxidation": of},
            )
        )
    return out


def _heat(text: str, problems: list[str]) -> list[Factor]:
    out = []
    for line, r in _rows("heat.csv", text, ("code", "name", "unit", "value_kg_per_unit", "publication_ref"), problems):
        w = f"heat.csv:{line}"
        code = _text(r["code"], f"{w}: code", problems, pattern=_CODE)
        _text(r["name"], f"{w}: name", problems)
        unit = _text(r["unit"], f"{w}: unit", problems, choices=("GJ",))
        value = _num(r["value_kg_per_unit"], f"{w}: value_kg_per_unit", problems, hi=1000.0)
        ref = _text(r["publication_ref"], f"{w}: publication_ref", problems)
        if None in (code, unit, value, ref):
            continue
        out.append(Factor(f"heat:{code}", "heat", code, value, unit, ref))
    return out


def _gwp(text: str, problems: list[str]) -> list[Factor]:
    out = []
    for line, r in _rows("gwp.csv", text, ("gas", "basis", "gwp", "publication_ref"), problems):
        w = f"gwp.csv:{line}"
        gas = _text(r["gas"], f"{w}: gas", problems, pattern=_CODE)
        basis = _text(r["basis"], f"{w}: basis", problems, choices=GWP_BASES)
        value = _num(r["gwp"], f"{w}: gwp", problems, hi=1e6)
        ref = _text(r["publication_ref"], f"{w}: publication_ref", problems)
        if None in (gas, basis, value, ref):
            continue
        out.append(Factor(f"gwp:{gas}:{basis}", "gwp", gas, value, "kg", ref, basis=basis))
    return out


def parse_library(version: str, texts: Mapping[str, str]) -> FactorLibrary:
    """Parse the four files' texts into a library; ``FactorFileError`` lists every problem found."""
    problems: list[str] = []
    if not _VERSION.match(version or ""):
        problems.append(f"VERSION:1: version: {version!r} is not a valid version")
    factors: list[Factor] = []
    for name, parse in (("grid.csv", _grid), ("fuel.csv", _fuel), ("heat.csv", _heat), ("gwp.csv", _gwp)):
        if name not in texts:
            problems.append(f"{name}:0: the file is missing")
            continue
        factors += parse(texts[name], problems)
    seen: set[str] = set()
    for f in factors:
        if f.row_key in seen:
            problems.append(f"{f.kind}.csv: row {f.row_key} appears twice")
        seen.add(f.row_key)
    if problems:
        raise FactorFileError(problems)
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
    return FactorLibrary(version, tuple(factors), digest.hexdigest())


def load_library(directory: Path = DATA_DIR) -> FactorLibrary:
    """Read ``VERSION`` and the four CSV files of a directory."""
    texts = {}
    for name in FILES:
        path = directory / name
        if path.exists():
            texts[name] = path.read_text(encoding="utf-8-sig")
    version_file = directory / "VERSION"
    version = version_file.read_text(encoding="utf-8").strip() if version_file.exists() else ""
    return parse_library(version, texts)


# --- choosing a factor -------------------------------------------------------------------------------------


class NoFactor(LookupError):
    """No factor in the library fits the request."""


def grid_factor(
    factors: Iterable[Factor], *, year: int, regions: Iterable[str], basis: str = "average", lag_years: int = 2
) -> Factor:
    """The grid factor for accounting ``year``: the latest data year at most ``year - lag_years`` (MEE publishes
    about two years behind, standards.md 5.2), at the first of ``regions`` (most specific first: province,
    regional grid, ``CN``) that has one of that basis; a more specific region wins over a newer year elsewhere."""
    target = year - lag_years
    grid = [f for f in factors if f.kind == "grid" and f.basis == basis and f.data_year is not None]
    for region in regions:
        candidates = [f for f in grid if f.code == region and f.data_year <= target]
        if candidates:
            return max(candidates, key=lambda f: f.data_year)
    raise NoFactor(f"no {basis} grid factor for data year {target} or earlier in {', '.join(regions)}")


def lookup(factors: Iterable[Factor], row_key: str) -> Factor:
    for f in factors:
        if f.row_key == row_key:
            return f
    raise NoFactor(f"no factor {row_key}")


def as_dict(f: Factor) -> dict[str, Any]:
    return {
        "row_key": f.row_key,
        "kind": f.kind,
        "code": f.code,
        "value": f.value,
        "unit": f.unit,
        "publication_ref": f.publication_ref,
        "region_level": f.region_level,
        "data_year": f.data_year,
        "basis": f.basis,
        "published_on": f.published_on.isoformat() if f.published_on else None,
        "detail": dict(f.detail),
    }
