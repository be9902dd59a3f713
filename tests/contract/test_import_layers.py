"""Import directions of STYLE.md B2: core imports nothing of ours, domains only core (carbon also energy),
api and reports any domain, the console, simulator and benchmarks on top, and only composition roots wire
siblings together. Third-party adapters stay in their modules, and the module graph has no cycle.

Every ``import`` and ``from ... import`` counts, wherever it is written (inside functions, under
``TYPE_CHECKING``), and relative imports are resolved: an import hidden in a function is still a dependency.
Imports made from strings at run time (``importlib.import_module`` in ``cli/bench.py``) are not seen.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = {"core", "ingest", "detectors", "alerts", "energy", "carbon", "hazwaste", "compliance"}
TOP = {"cli", "simulator", "benchmarks"}
PACKAGES = DOMAINS | {"api", "reports"} | TOP
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "detectors": {"core"},
    "alerts": {"core"},
    "energy": {"core"},
    "carbon": {"core", "energy"},
    "hazwaste": {"core"},
    "compliance": {"core"},
    "api": PACKAGES - TOP - {"api"},
    "reports": PACKAGES - TOP - {"api", "reports"},  # like api, reports may read every domain; api serves reports
    "cli": PACKAGES - {"cli"},  # the console wires everything (a composition root)
    "simulator": {"core"},  # it plays the plant's devices: it knows only the vocabulary
    "benchmarks": PACKAGES - {"benchmarks", "cli"},  # they drive the service's parts; the console runs them
}
# ARCHITECTURE.md: composition roots are ``*/__main__.py``, ``api/main.py`` and the console; they may wire
# siblings together (the console is allowed everything above).
COMPOSITION_ROOTS = {"api/main.py"}
# Imports that break the rules today and are kept on purpose, (module path, imported package) -> why.
# The test fails when an entry is no longer needed, so that it is dropped.
EXCEPTIONS = {
    ("simulator/hj212.py", "ingest"): "the simulated data logger frames its data with the one HJ 212 codec "
    "(ingest/hj212); a copy in the simulator could drift from what the listener parses",
    ("benchmarks/alarm_latency.py", "cli"): "applies the demo plant with cli.plantfile.apply_full; issue 18 item 5 "
    "moves that use case out of the console",
    ("benchmarks/notify.py", "cli"): "as benchmarks/alarm_latency.py (cli.plantfile, issue 18 item 5)",
    ("benchmarks/reports.py", "cli"): "as benchmarks/alarm_latency.py (cli.plantfile, issue 18 item 5)",
}
# Import cycles between modules known today, frozenset of modules -> why it is tolerated for now.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
# Where a third-party library may be imported (module paths relative to the repo root; a folder ends in "/").
THIRD_PARTY_HOMES = {
    "fastapi": {"api/"},
    "paho": {"core/mqtt.py", "ingest/subscriber.py", "alerts/interlock.py", "simulator/", "benchmarks/", "tests/"},
    "apprise": {"alerts/notifications/notify.py", "tests/"},
    "sklearn": {"detectors/adapters.py", "detectors/artifacts.py", "tests/"},
    "pyod": {"detectors/adapters.py", "detectors/artifacts.py", "tests/"},
    # PDFs: the report renderer, hazardous-waste labels and manifests; the CJK font file itself comes from core/fonts.py
    "fpdf": {"reports/pdf.py", "hazwaste/labels.py", "hazwaste/manifest_pdf.py"},
    # one spreadsheet module per package that exports (the national system's field order lives with its domain)
    "openpyxl": {"reports/xlsx.py", "hazwaste/exports.py", "energy/exports.py", "tests/"},
    # no module may use reportlab any more: its CID fonts (STSong-Light) are not embedded, so Chinese needs the
    # reader's fonts; it is no longer a dependency
    "reportlab": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _modules() -> dict[str, Path]:
    """Every first-party module by dotted name."""
    return {_module_name(path): path for package in sorted(PACKAGES) for path in (ROOT / package).rglob("*.py")}


@functools.cache
def _imports(path: Path) -> tuple[str, ...]:
    """Dotted names of everything ``path`` imports (``from a import b`` gives ``a.b``), relative ones resolved."""
    module = _module_name(path) if path.is_relative_to(ROOT) else path.stem
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.append(base)
            names += [f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*"]
    return tuple(name for name in names if name)


def _roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imports(path)}


def _python_files() -> list[Path]:
    return [
        p for p in ROOT.rglob("*.py") if not p.relative_to(ROOT).as_posix().startswith((".venv/", "build/", "var/"))
    ]


def test_first_party_imports_point_downwards() -> None:
    problems, used_exceptions = [], set()
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in COMPOSITION_ROOTS or path.name == "__main__.py":
                continue
            for imported in sorted(_roots(path) & (PACKAGES | {"tests"}) - allowed - {package}):
                if (rel, imported) in EXCEPTIONS:
                    used_exceptions.add((rel, imported))
                else:
                    problems.append(f"{rel} imports {imported}")
    problems += [
        f"exception {rel} -> {imported} is no longer needed: drop it from EXCEPTIONS"
        for rel, imported in sorted(EXCEPTIONS.keys() - used_exceptions)
    ]
    assert not problems, "\n".join(problems)


def test_import_parser_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    sample = pkg / "mod.py"
    sample.write_text(
        "import json\n\ndef f():\n    from alerts import service\n    from . import sibling\n"
        "    from .other import thing\n\nif True:\n    import api.main\n"
    )
    names = set(_imports(sample))
    assert {"json", "alerts", "alerts.service", "api.main", "sibling", "other", "other.thing"} <= names


def test_third_party_adapters_stay_in_their_modules() -> None:
    problems = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        used = _roots(path)
        for lib, homes in THIRD_PARTY_HOMES.items():
            if lib in used and not any(rel == h or (h.endswith("/") and rel.startswith(h)) for h in homes):
                problems.append(f"{rel} imports {lib}")
    assert not problems, "\n".join(sorted(problems))


def test_first_party_names_resolve_inside_repo() -> None:
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec and spec.origin and Path(spec.origin).is_relative_to(ROOT), package


# --- cycles ----------------------------------------------------------------------------------------------


def _graph(*, packages: bool = False) -> dict[str, set[str]]:
    """First-party import graph: module -> modules it imports, or package -> packages (``packages=True``).

    The package graph leaves out ``__main__`` modules: nothing imports an entry point, so it cannot close a
    cycle, and ``python -m detectors.evaluation`` may run the console's command.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if packages and path.name == "__main__.py":
            continue
        source = name.split(".")[0] if packages else name
        targets = graph.setdefault(source, set())
        for imported in _imports(path):
            while imported and imported not in modules:  # ``from a.b import func`` depends on a.b
                imported = imported.rpartition(".")[0]
            if imported:
                target = imported.split(".")[0] if packages else imported
                if target != source:
                    targets.add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_shortest_cycle(graph, component) for component in components]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def test_module_import_graph_has_no_cycle() -> None:
    cycles = _cycles(_graph())
    found = {frozenset(c) for c in cycles}
    problems = [" -> ".join(c) for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    problems += [
        f"known cycle {sorted(known)} is gone: drop it from KNOWN_CYCLES"
        for known in KNOWN_CYCLES
        if known not in found
    ]
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_package_import_graph_has_no_cycle() -> None:
    cycles = _cycles(_graph(packages=True))
    assert not cycles, "package cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_cycle_check_reports_the_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"x": {"y"}, "y": set()}) == []
