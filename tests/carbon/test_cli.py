"""``ehs carbon`` at the console against the real database: import the factors (twice: idempotent), refuse a bad
factor file by line and field, set a site and the demo routing, and say clearly when the energy ledgers are
missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from carbon.factors import DATA_DIR
from tests.support import REPO_ROOT, unique_code

pytestmark = pytest.mark.db


def _ehs(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EHS_DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "carbon", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_imports_factors_sets_routing_and_refuses_bad_files(database_url: str, tmp_path: Path) -> None:
    site = unique_code("cb")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO site (code, name) VALUES (%s, '碳')", (site,))
    first = _ehs(database_url, "factors", "import")
    assert first.returncode == 0 and "imported, active" in first.stdout, first.stderr
    assert "already stored" in _ehs(database_url, "factors", "import").stdout
    bad = tmp_path / "lib"
    shutil.copytree(DATA_DIR, bad)
    (bad / "VERSION").write_text("9.9")
    (bad / "grid.csv").write_text(
        (DATA_DIR / "grid.csv")
        .read_text(encoding="utf-8")
        .replace("province,jiangsu,2022,average,0.5978", "province,jiangsu,2022,average,-0.5978"),
        encoding="utf-8",
    )
    refused = _ehs(database_url, "factors", "import", str(bad))
    assert refused.returncode == 2
    assert "grid.csv:28: value_kg_per_kwh: '-0.5978' must lie between 0 and 5" in refused.stderr
    listed = _ehs(database_url, "factors", "list")
    assert "2026.1" in listed.stdout and "9.9" not in listed.stdout
    assert _ehs(database_url, "site", site, "--province", "jiangsu", "--grid-region", "east").returncode == 0
    routed = _ehs(database_url, "routing", site, "--demo")
    assert routed.returncode == 0 and routed.stdout.strip().endswith("aging -> pack"), routed.stdout
    missing = _ehs(database_url, "ledger", site, "2025-03")
    if not (REPO_ROOT / "energy" / "ledger.py").exists():
        assert missing.returncode == 2 and "energy ledgers" in missing.stderr
