"""Settings of the HTTP API (prefix ``EHS_API_``); built on demand, never at import time."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHS_API_", env_file=".env", extra="ignore")

    #: Access tokens are short-lived JWTs; clients renew them with the refresh token.
    access_token_minutes: float = Field(15.0, gt=0, le=24 * 60)
    #: Refresh tokens rotate on every use; a family unused this long expires.
    refresh_token_days: float = Field(14.0, gt=0, le=365)
    #: JWT signing key; unset means one derived from EHS_SECRET_KEY (which production requires to be set).
    jwt_secret: SecretStr | None = None
    #: Consecutive failed logins (password or TOTP) before the account is locked.
    lockout_threshold: int = Field(5, ge=1)
    lockout_minutes: float = Field(15.0, gt=0)
    #: Requests per client address to the authentication endpoints (``limits`` notation).
    auth_rate_limit: str = "20/minute"
    #: Expensive reads per caller: verifying the whole audit chain, alarm KPIs over more than ``kpi_long_days``.
    heavy_rate_limit: str = "6/minute"
    kpi_long_days: float = Field(7.0, gt=0)
    #: Browser origins allowed by CORS; empty means no cross-origin access.
    cors_origins: list[str] = Field(default_factory=list)
    #: Send Strict-Transport-Security (only behind TLS, e.g. a reverse proxy terminating HTTPS).
    hsts: bool = False
    #: Largest accepted request body.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    #: Readings on the WebSocket: at most one value per point per interval (the latest wins).
    ws_reading_interval_s: float = Field(0.5, gt=0, le=60)
    #: Alarm events waiting for one slow client; beyond this the client is disconnected with a reason.
    ws_alarm_queue: int = Field(1000, ge=1)
    ws_auth_timeout_s: float = Field(10.0, gt=0)
    ws_max_clients: int = Field(1000, ge=1)
    #: WebSocket authentications that may hold a pooled connection at once (the rest wait; REST keeps the others).
    ws_auth_concurrency: int = Field(2, ge=1)
    #: Live sessions re-check their credential this often (revocations also close them at once by NOTIFY).
    ws_recheck_s: float = Field(60.0, gt=0)
    #: Serve /api/v1/latest from the live feed's cache (at most one reading interval behind the database);
    #: false: always query the database.
    latest_from_cache: bool = True
    #: Rows per raw-readings page and buckets per bucketed query, at most.
    readings_max_rows: int = Field(10000, ge=10)
    export_max_rows: int = Field(200_000, ge=10)

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("EHS_API_JWT_SECRET must be at least 32 characters (RFC 7518 section 3.2)")
        return value
