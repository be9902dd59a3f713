"""``ehs test`` provisions the Debian packages the suite needs, or names them when it may not install."""

from __future__ import annotations

import pytest

from cli import provision


def test_names_every_missing_package_when_it_may_not_install(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = (
        provision.Requirement("pkg-a", "for a", lambda: False),
        provision.Requirement("pkg-b", "for b", lambda: True),
    )
    monkeypatch.setattr(provision, "REQUIREMENTS", fake)
    monkeypatch.setattr(provision, "_sudo", lambda: None)
    monkeypatch.setenv("EHS_TEST_PROVISION", "1")
    lines: list[str] = []
    still = provision.provision(lines.append)
    assert [r.package for r in still] == ["pkg-a"]
    assert len(lines) == 1 and "sudo apt-get install pkg-a" in lines[0] and "pkg-b" not in lines[0]


def test_off_switch_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision, "REQUIREMENTS", (provision.Requirement("pkg-a", "for a", lambda: False),))
    monkeypatch.setattr(provision, "_sudo", lambda: pytest.fail("must not try to install"))
    monkeypatch.setenv("EHS_TEST_PROVISION", "0")
    assert [r.package for r in provision.provision(lambda _line: None)] == ["pkg-a"]
