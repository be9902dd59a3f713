"""Process-wide settings (pydantic-settings, prefix ``EHS_``); built on demand, never at import time."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER = "change-me"


class CoreSettings(BaseSettings):
    """Settings shared by every process; packages add their own sections (``EHS_INGEST_`` ...)."""

    model_config = SettingsConfigDict(
        env_prefix="EHS_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

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
    #: Key for command signatures and signed links; must be set outside development.
    secret_key: SecretStr = SecretStr(_PLACEHOLDER)
    db_pool_min: int = 1
    db_pool_max: int = 8

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CoreSettings:
        if self.environment == "production" and self.secret_key.get_secret_value() == _PLACEHOLDER:
            raise ValueError("EHS_SECRET_KEY must be set in production")
        return self

    @property
    def secret_is_placeholder(self) -> bool:
        """True in development while EHS_SECRET_KEY is not set (production refuses to start then)."""
        return self.secret_key.get_secret_value() == _PLACEHOLDER

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


@functools.cache
def get_settings() -> CoreSettings:
    """Return the process settings, read from the environment once."""
    return CoreSettings()
