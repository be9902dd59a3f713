"""The service secret: generated once per data directory (0600) and shared by its processes, never a placeholder,
at least 32 random bytes in production; the interlock root can be kept away from the API."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.commands import device_key
from core.secrets import SECRET_FILE, weakness
from core.settings import CoreSettings
from tests.support import REPO_ROOT

_CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EHS_")}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env={**_CLEAN_ENV, "PYTHONPATH": str(REPO_ROOT), **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_key_every_process_of_a_data_dir_uses_one_generated_secret(tmp_path: Path) -> None:
    starters = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from core.settings import CoreSettings; print(CoreSettings().secret_key.get_secret_value())",
            ],
            env={**_CLEAN_ENV, "PYTHONPATH": str(REPO_ROOT), "EHS_DATA_DIR": str(tmp_path)},
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    seen = {p.communicate(timeout=120)[0].strip() for p in starters}  # started together: they must agree
    assert len(seen) == 1
    [value] = seen
    assert weakness(value) is None and value != "change-me"
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert CoreSettings(data_dir=tmp_path).secret_key.get_secret_value() == value
    key = _run(["-m", "cli.main", "alarms", "key", "cz01", "fan-01"], {"EHS_DATA_DIR": str(tmp_path)})
    assert key.stdout.strip() == device_key(value, "cz01", "fan-01").hex()
    assert CoreSettings(data_dir=tmp_path / "elsewhere").secret_key.get_secret_value() != value


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text(secrets.token_urlsafe(48))
    (tmp_path / SECRET_FILE).chmod(0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        CoreSettings(data_dir=tmp_path)


@pytest.mark.parametrize("value", ["change-me", "CHANGE-ME-please", "your-secret-here"])
def test_placeholders_are_refused_even_in_development(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        CoreSettings(secret_key=value, data_dir=tmp_path)
    with pytest.raises(ValidationError, match="EHS_INTERLOCK_SECRET is a placeholder"):
        CoreSettings(secret_key="dev", interlock_secret=value, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "must be set in production"),
        ("short-but-random-Q7x", "at least 32"),
        ("x" * 64, "repeated pattern"),
        ("0123456789abcdef" * 4, "repeated pattern"),
        ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "sequence"),
        (secrets.token_hex(16), "entropy"),
        ("change-me" + secrets.token_urlsafe(40), "placeholder"),
    ],
)
def test_production_requires_32_random_bytes(value: str | None, why: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=why):
        CoreSettings(environment="production", data_dir=tmp_path, **({"secret_key": value} if value else {}))
    assert not (tmp_path / SECRET_FILE).exists()  # production never generates one silently


def test_production_accepts_random_secrets_and_a_separate_interlock_root() -> None:
    for value in (secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_urlsafe(64)):
        assert CoreSettings(environment="production", secret_key=value).secret_key.get_secret_value() == value
    api, interlock = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    both = CoreSettings(environment="production", secret_key=api, interlock_secret=interlock)
    assert both.interlock_root == interlock
    assert CoreSettings(environment="production", secret_key=api).interlock_root == api
    with pytest.raises(ValidationError, match="EHS_INTERLOCK_SECRET"):
        CoreSettings(environment="production", secret_key=api, interlock_secret="short")


def test_a_service_refuses_to_start_on_a_placeholder_secret(tmp_path: Path) -> None:
    for module in ("ingest", "alerts", "simulator"):
        done = _run(
            ["-m", module],
            {
                "EHS_SECRET_KEY": "change-me",
                "EHS_DATA_DIR": str(tmp_path),
                "EHS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
                "EHS_MQTT_URL": "mqtt://127.0.0.1:9",
            },
        )
        assert done.returncode != 0 and "EHS_SECRET_KEY is a placeholder" in done.stderr, (module, done.stderr[-800:])


def test_the_api_never_derives_interlock_keys() -> None:
    """The internet-facing API signs no command (the alerts worker signs manual ones), so it must not touch the
    interlock root: with EHS_INTERLOCK_SECRET set only for ingest, alerts and the simulator, it cannot."""
    for path in (REPO_ROOT / "api").rglob("*.py"):
        text = path.read_text()
        assert "interlock_root" not in text and "device_key" not in text and "interlock_secret" not in text, path
