"""alerts/ has no import cycle, counting imports inside functions, and its layers point downwards: the
configuration store and the command machine under the alarm service, the flows on top (issue 18, item 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
#: module -> modules of alerts/ it must not import, directly or through others.
BELOW = {
    "alerts.config_store": {"alerts.commands", "alerts.service", "alerts.flows"},
    "alerts.commands": {"alerts.service", "alerts.flows", "alerts.config_store"},
    "alerts.service": {"alerts.flows", "alerts.notifications"},
    "alerts.decisions": {"alerts.plans", "alerts.commands", "alerts.store", "alerts.service", "alerts.flows"},
    "alerts.store": {"alerts.commands", "alerts.service", "alerts.flows", "alerts.config_store"},
}


def _module_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, here: str, modules: set[str]) -> set[str]:
    """The alerts modules one import statement names (``from alerts import x`` names module ``alerts.x``)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = here.split(".")[: len(here.split(".")) - node.level + (here in _packages(modules))]
            base = ".".join([*package, *([base] if base else [])])
        found.add(base)
        found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def _packages(modules: set[str]) -> set[str]:
    return {m for m in modules if any(other.startswith(m + ".") for other in modules)}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Every module under ``root`` and the modules of ``root`` it imports anywhere (functions included)."""
    paths = {_module_of(p, root): p for p in root.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = set().union(*(_targets(n, name, modules) for n in ast.walk(tree))) - {name}
        graph[name].discard(root.name)  # the package itself (its __init__)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``a -> b -> ... -> a``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_alerts_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(ALERTS))
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(BELOW))
def test_layers_point_downwards(module: str) -> None:
    graph = import_graph(ALERTS)
    assert module in graph, f"{module} is gone: update BELOW"
    reached = _reachable(graph, module)
    assert not {m for m in reached for below in BELOW[module] if m == below or m.startswith(below + ".")}


def test_a_cycle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    """The check sees what the old alerts/ had: dispatch imports service, service imports dispatch in a function."""
    package = tmp_path / "alerts"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "dispatch.py").write_text("from alerts import service\n")
    (package / "service.py").write_text("def respond():\n    from alerts import dispatch  # noqa\n    dispatch.x()\n")
    (package / "store.py").write_text("from alerts.models import X\n")
    (package / "models.py").write_text("X = 1\n")
    graph = import_graph(package)
    assert graph["alerts.store"] == {"alerts.models"}
    assert find_cycle(graph) == ["alerts.dispatch", "alerts.service", "alerts.dispatch"]
