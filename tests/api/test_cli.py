"""The console: ``ehs users`` (the first administrator, then list, disable, reset TOTP, reset password) and the
audit entry of ``ehs config apply``."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from api import auth
from api.auth import AuthConfig
from api.settings import ApiSettings
from core.settings import CoreSettings
from tests.support import REPO_ROOT

pytestmark = pytest.mark.db


def _ehs(url: str, *args: str, stdin: str | None = None, command: str = "users") -> subprocess.CompletedProcess:
    env = {**os.environ, "EHS_DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", command, *args],
        env=env,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _can_login(url: str, username: str, password: str) -> bool:
    from datetime import UTC, datetime

    cfg = AuthConfig.from_settings(CoreSettings(database_url=url), ApiSettings())
    with psycopg.connect(url) as conn:
        result = auth.login(
            conn=conn, cfg=cfg, username=username, password=password, totp=None, now=datetime.now(UTC), client="test"
        )
    return result.tokens is not None


def test_first_administrator_and_account_management(database_url: str) -> None:
    made = _ehs(database_url, "add", "Alice", "--role", "admin", "--all-sites", "--generate")
    assert made.returncode == 0, made.stderr
    password = made.stdout.split("one-time password: ")[1].strip()
    assert _can_login(database_url, "alice", password)

    piped = _ehs(database_url, "add", "bob", "--role", "viewer", "--site", "nowhere", stdin="a long enough secret\n")
    assert piped.returncode == 1 and "unknown site(s): nowhere" in piped.stderr
    weak = _ehs(database_url, "add", "bob", "--role", "viewer", "--all-sites", stdin="short\n")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    assert (
        _ehs(database_url, "add", "bob", "--role", "viewer", "--all-sites", stdin="a long enough secret\n").returncode
        == 0
    )

    listed = _ehs(database_url, "list").stdout
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[2:]}
    assert rows["alice"][1:4] == ["admin", "active", "off"] and rows["bob"][1:4] == ["viewer", "active", "off"]
    assert _ehs(database_url, "disable", "bob").returncode == 0
    assert not _can_login(database_url, "bob", "a long enough secret")
    last = _ehs(database_url, "disable", "alice")
    assert last.returncode == 1 and "last enabled administrator" in last.stderr
    assert _ehs(database_url, "reset-mfa", "alice").returncode == 0
    reset = _ehs(database_url, "reset-password", "alice", "--generate")
    assert _can_login(database_url, "alice", reset.stdout.split("one-time password: ")[1].strip())
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_entry ORDER BY seq").fetchall()]
        actors = {r[0] for r in conn.execute("SELECT actor FROM audit_entry WHERE action LIKE 'user.%'")}
    assert actions.count("user.create") == 2 and "user.mfa_reset" in actions and "user.password_reset" in actions
    assert all(a.startswith("cli:") for a in actors)


def test_config_apply_is_audited_once_per_change(database_url: str) -> None:
    plant = str(REPO_ROOT / "examples" / "demo-plant.yaml")
    for _ in range(2):  # the second apply changes nothing: no entry
        applied = _ehs(database_url, "apply", plant, command="config")
        assert applied.returncode == 0, applied.stderr
    with psycopg.connect(database_url) as conn:
        entries = conn.execute("SELECT actor, detail FROM audit_entry WHERE action = 'config.apply'").fetchall()
    assert len(entries) == 1 and entries[0][0].startswith("cli:") and entries[0][1]["sites"] == ["cz01"]
