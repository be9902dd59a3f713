"""Issue 18 item 4: the API calls domains, it does not write their SQL.

The HTTP and WebSocket modules (every module under ``api/routes/``, ``api/hub.py`` and ``api/config_scope.py``)
run no SQL of their own: no call of a connection's or cursor's ``execute``/``executemany``, no
``cursor()``, and no string literal holding SQL (``SELECT ``, ``INSERT ``, ``UPDATE ``, ``DELETE FROM``, in
upper case as the code base writes SQL; docstrings aside). Their SQL lives in the domains (``reports``,
``alerts``, ``energy``...) and in ``core`` read functions, which take the caller's scope.

Modules that still hold SQL are listed in ``KNOWN_SQL_IN_ROUTES`` with how many places; the list may only
shrink: a module not listed fails, a listed module with more places than recorded fails, and a listed module
with fewer (or none) fails too, so that its entry is lowered or dropped when its SQL moves out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = sorted([*(ROOT / "api" / "routes").glob("*.py"), ROOT / "api" / "hub.py", ROOT / "api" / "config_scope.py"])
#: SQL statements as the code base writes them (upper case), followed by a space or a line break
SQL = re.compile(r"\b(?:SELECT|INSERT|UPDATE)\s|\bDELETE\s+FROM\b")
DB_CALLS = {"execute", "executemany", "cursor"}

# Route modules that still run SQL of their own (module path -> number of places), to move into their domains
# (issue 18 item 4). The test fails when a count no longer matches, so that the list only shrinks.
KNOWN_SQL_IN_ROUTES: dict[str, int] = {}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_places(source: str) -> list[str]:
    """Where a module's source runs or holds SQL: ``line: what`` for each place."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    places = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            places.append(f"{node.lineno}: .{node.func.attr}(...) call")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and SQL.search(node.value)
        ):
            places.append(f"{node.lineno}: SQL in a string {node.value.strip()[:60]!r}")
    return sorted(places, key=lambda p: int(p.split(":")[0]))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_checked_modules_exist():
    names = {_rel(p) for p in CHECKED}
    assert {"api/hub.py", "api/config_scope.py", "api/routes/reports.py", "api/routes/push.py"} <= names
    assert set(KNOWN_SQL_IN_ROUTES) <= names, "an allow-listed module does not exist any more: drop its entry"


@pytest.mark.parametrize("path", CHECKED, ids=_rel)
def test_api_modules_run_no_sql(path: Path):
    places = sql_places(path.read_text(encoding="utf-8"))
    known = KNOWN_SQL_IN_ROUTES.get(_rel(path), 0)
    assert len(places) == known, (
        f"{_rel(path)} runs SQL in {len(places)} places (allowed: {known}); move it into the domain (or core) as "
        "a function taking the caller's scope, and lower KNOWN_SQL_IN_ROUTES:\n" + "\n".join(places)
    )


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ('def f(conn):\n    return conn.execute("SELECT 1")\n', 2),
        ("def f(conn):\n    with conn.cursor() as cur:\n        pass\n", 1),
        ('Q = f"UPDATE alarm SET state = {1}"\n', 1),
        ('def f(conn):\n    return fetch_all(conn, "DELETE FROM push_subscription")\n', 1),
        ('X = "INSERT INTO t VALUES (1)"\n', 1),
        ('X = """\n    SELECT\n      id FROM site"""\n', 1),
        ('X = "the UPDATED list; DELETED"\n', 0),
        ('def f():\n    """SELECT is mentioned in a docstring only."""\n    return "select a site"\n', 0),
        ("def f(svc, conn):\n    return svc.list_reports(conn)\n", 0),
    ],
)
def test_the_checker_sees_sql(source: str, count: int):
    assert len(sql_places(source)) == count
