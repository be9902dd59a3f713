"""Process-wide settings (pydantic-settings, prefix ``EHS_``); built on demand, never at import time."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import secrets
from core.keys import Keyring


class CoreSettings(BaseSettings):
    """Settings shared by every process; packages add their own sections (``EHS_INGEST_`` ...)."""

    model_config = SettingsConfigDict(env_prefix="EHS_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    #: PostgreSQL URL; unset means the embedded server (pgserver) with its data under ``data_dir``.
    database_url: str | None = None
    #: MQTT URL ``mqtt://user:password@host:port``; unset means an embedded broker on a free local port.
    mqtt_url: str | None = None
    #: Where the embedded database, the spool and other local state live.
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    #: Raw readings are kept this long: older daily partitions (plain PostgreSQL) or chunks (TimescaleDB) are
    #: dropped by ingest's housekeeping (and TimescaleDB's retention policy); more than 4 days (the hourly
    #: rollup refreshes the last 3 days from raw readings).
    retention_days: int = Field(default=400, ge=5)
    #: TimescaleDB chunks older than this are compressed (community build only).
    compress_after_days: int = Field(default=7, ge=1)
    #: Root of every key (command signatures, links, sealed secrets); required in production (>= 32 random bytes);
    #: unset in development: ``{data_dir}/secret.key``, generated once (core.secrets).
    secret_key: SecretStr = SecretStr("")
    #: Former values of ``secret_key`` after a rotation (comma-separated, newest first): what they sealed or signed
    #: is still read until ``ehs keys reseal`` has sealed everything again under ``secret_key`` (core.keys).
    secret_key_previous: SecretStr | None = None
    db_pool_min: int = 1
    db_pool_max: int = 8

    #: A separate root for the interlock command keys, given only to the processes that sign commands (ingest,
    #: alerts, the simulator, ``ehs alarms key``) and not to the API; unset: ``secret_key`` is the root.
    interlock_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CoreSettings:
        production = self.environment == "production"
        if not self.secret_key.get_secret_value():
            if production:
                raise ValueError(
                    "EHS_SECRET_KEY must be set in production (at least 32 random bytes, e.g. "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            self.secret_key = SecretStr(secrets.load_or_create(self.data_dir))
        secrets.check(self.secret_key.get_secret_value(), name="EHS_SECRET_KEY", production=production)
        if self.interlock_secret is not None:
            secrets.check(self.interlock_secret.get_secret_value(), name="EHS_INTERLOCK_SECRET", production=production)
        return self

    @property
    def keyring(self) -> Keyring:
        """The current secret and the previous ones (sealing and links; core.keys)."""
        previous = self.secret_key_previous.get_secret_value() if self.secret_key_previous else None
        return Keyring.parse_previous(self.secret_key.get_secret_value(), previous)

    @property
    def interlock_root(self) -> str:
        """The secret the per-device command keys derive from (``core.commands.device_key``)."""
        return (self.interlock_secret or self.secret_key).get_secret_value()

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


@functools.cache
def get_settings() -> CoreSettings:
    """Return the process settings, read from the environment once; refused settings end the process with the
    reason (a service never starts on a placeholder or, in production, a weak secret)."""
    try:
        return CoreSettings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"settings refused: {problems}") from None
