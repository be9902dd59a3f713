"""The toolchain keeps the code as the house style wants it: ruff's lint passes on the whole tree."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT


def test_ruff_lint_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
