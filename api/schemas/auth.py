"""Schemas of authentication, users and API keys. Secrets appear only in the responses that create them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.policy import Role

Password = Annotated[str, Field(min_length=1, max_length=128)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires (it rotates on use)")


class RefreshRequest(_In):
    refresh_token: str = Field(min_length=1, max_length=200)


class MeRead(BaseModel):
    kind: str = Field(description="user or api_key")
    id: int
    name: str
    role: Role
    all_sites: bool
    site_ids: list[int]
    processes: list[str] | None = Field(description="Process areas this caller is limited to (null: all)")
    permissions: list[str]
    mfa_enabled: bool | None = None


class PasswordChange(_In):
    current_password: Password
    new_password: Password


class MfaSetupRead(BaseModel):
    secret: str = Field(description="Base32 TOTP seed, shown once; enter it or scan the URI as a QR code")
    provisioning_uri: str


class MfaCode(_In):
    code: str = Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$")


class MfaDisable(MfaCode):
    password: Password


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    sites: list[str]
    all_sites: bool
    mfa_enabled: bool
    disabled_at: datetime | None
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class UserCreate(_In):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]+$")
    display_name: str = Field("", max_length=200)
    role: Role
    sites: list[str] = Field(default_factory=list, max_length=500, description="Site codes")
    all_sites: bool = False
    password: str | None = Field(None, max_length=128, description="Omit to get a one-time password")


class UserCreated(UserRead):
    one_time_password: str | None = Field(None, description="Only when no password was given; shown once")


class UserUpdate(_In):
    display_name: str | None = Field(None, max_length=200)
    role: Role | None = None
    sites: list[str] | None = Field(None, max_length=500)
    all_sites: bool | None = None
    disabled: bool | None = None


class PasswordReset(_In):
    password: str | None = Field(None, max_length=128, description="Omit to get a one-time password")


class PasswordResetRead(BaseModel):
    one_time_password: str | None = None


class ApiKeyRead(BaseModel):
    id: int
    prefix: str
    name: str
    role: Role
    sites: list[str]
    all_sites: bool
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    sites: list[str] = Field(default_factory=list, max_length=500)
    all_sites: bool = False
    expires_at: AwareDatetime | None = None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key, shown once: send it as X-API-Key")
