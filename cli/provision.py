"""What the test suite needs from the operating system, provisioned by ``ehs test`` itself.

The browser tests drive Debian's Chromium (Playwright's own browser downloads are blocked on these machines), the
screenshots want a CJK font, and the report tests render PDFs to images with poppler. ``ehs test`` installs the
missing Debian packages when it runs as root or may use ``sudo -n``; otherwise it names what is missing and goes on
(the tests that need it then fail with their own message: a missing tool is a failure, not a skip).
``EHS_TEST_PROVISION=0`` turns this off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    package: str  # Debian package
    why: str
    present: Callable[[], bool]


def _has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


REQUIREMENTS = (
    Requirement(
        "chromium",
        "browser tests (Playwright drives /usr/bin/chromium)",
        lambda: os.access("/usr/bin/chromium", os.X_OK),
    ),
    Requirement("fonts-wqy-microhei", "Chinese text in the browser tests' screenshots", _has_cjk_font),
    Requirement(
        "poppler-utils",
        "PDF reports read back (pdftoppm, pdftotext, pdffonts)",
        lambda: all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "pdffonts")),
    ),
)


def _sudo() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode == 0
    ):
        return ["sudo", "-n"]
    return None


def missing() -> list[Requirement]:
    return [req for req in REQUIREMENTS if not req.present()]


def provision(echo: Callable[[str], None] = print) -> list[Requirement]:
    """Install what is missing where allowed; return what is still missing afterwards."""
    if os.environ.get("EHS_TEST_PROVISION", "1") == "0":
        return missing()
    wanted = missing()
    if not wanted:
        return []
    if not shutil.which("apt-get"):
        for req in wanted:
            echo(f"ehs test: {req.package} is missing ({req.why}); install it with your package manager")
        return wanted
    sudo = _sudo()
    if sudo is None:
        names = " ".join(req.package for req in wanted)
        echo(f"ehs test: missing {names}; run `sudo apt-get install {names}` (not root and no sudo)")
        return wanted
    names = [req.package for req in wanted]
    echo(f"ehs test: installing Debian packages {' '.join(names)} for the tests ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *names], env=env, check=False, stdout=subprocess.DEVNULL)
    still = missing()
    for req in still:
        echo(f"ehs test: could not install {req.package} ({req.why})")
    return still
