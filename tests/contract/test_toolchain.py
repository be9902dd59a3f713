"""The toolchain keeps the code as the house style wants it: ruff's lint and ruff's formatter pass on the whole tree."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_lint_is_clean() -> None:
    result = _ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    """The tree is formatted as ``[tool.ruff.format]`` says (run ``ruff format .`` to fix)."""
    result = _ruff("format", "--check")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
