"""Import directions of STYLE.md B2: core imports nothing of ours, domains only core (carbon also energy),
api any domain, and only composition roots wire siblings together. Third-party adapters stay in their modules."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"core", "ingest", "detectors", "alerts", "energy", "carbon", "hazwaste", "compliance", "api", "reports"}
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "detectors": {"core"},
    "alerts": {"core"},
    "energy": {"core"},
    "carbon": {"core", "energy"},
    "hazwaste": {"core"},
    "compliance": {"core"},
    "api": PACKAGES - {"api"},
    "reports": PACKAGES - {"api", "reports"},      # like api, reports may read every domain; api serves reports
}
COMPOSITION_ROOTS = {"ingest/__main__.py", "alerts/__main__.py", "api/main.py", "compliance/__main__.py",
                     "energy/__main__.py"}
# Where a third-party library may be imported (module paths relative to the repo root; a folder ends in "/").
THIRD_PARTY_HOMES = {
    "fastapi": {"api/"},
    "paho": {"core/mqtt.py", "ingest/subscriber.py", "alerts/interlock.py", "simulator/", "benchmarks/", "tests/"},
    "apprise": {"alerts/notify.py", "tests/"},
    "sklearn": {"detectors/adapters.py", "detectors/artifacts.py", "tests/"},
    "pyod": {"detectors/adapters.py", "detectors/artifacts.py", "tests/"},
    "fpdf": {"reports/pdf.py"},
    # one spreadsheet module per package that exports (the national system's field order lives with its domain)
    "openpyxl": {"reports/xlsx.py", "hazwaste/exports.py", "energy/exports.py", "tests/"},
    # hazardous-waste labels and manifests (to move onto the report renderer, which embeds its CJK font)
    "reportlab": {"hazwaste/labels.py", "hazwaste/manifest_pdf.py"},
}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_first_party_imports_point_downwards() -> None:
    problems = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in COMPOSITION_ROOTS:
                continue
            used = _imported_roots(path)
            problems += [f"{rel} imports {p}" for p in (used & PACKAGES) - allowed - {package}]
    assert not problems, "\n".join(sorted(problems))


def test_third_party_adapters_stay_in_their_modules() -> None:
    problems = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "build/")):
            continue
        used = _imported_roots(path)
        for lib, homes in THIRD_PARTY_HOMES.items():
            if lib in used and not any(rel == h or (h.endswith("/") and rel.startswith(h)) for h in homes):
                problems.append(f"{rel} imports {lib}")
    assert not problems, "\n".join(sorted(problems))


def test_first_party_names_resolve_inside_repo() -> None:
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec and spec.origin and Path(spec.origin).is_relative_to(ROOT), package
