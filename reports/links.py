"""Signed download links for reports sent to chat channels: the token names one archived report and expires
(7 days by default). It is a JWT (HS256) under a key derived from ``EHS_SECRET_KEY`` for this purpose only; the
token is the credential, and every download through it is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from core.commands import hkdf_sha256

_AUDIENCE = "ehs-report-link"
TTL = timedelta(days=7)


class LinkError(Exception):
    """``status`` 404 for an unknown or forged token, 410 for an expired one."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Link:
    report_id: int
    to: str
    expires_at: datetime


def _key(secret: str) -> bytes:
    return hkdf_sha256(secret.encode(), salt=b"ehs-monitor/links", info=b"report-link:v1")


def make(secret: str, *, report_id: int, to: str, now: datetime, ttl: timedelta = TTL) -> str:
    claims = {"r": report_id, "to": to, "aud": _AUDIENCE, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, _key(secret), algorithm="HS256")


def read(secret: str, token: str, *, now: datetime) -> Link:
    """Check the signature and the expiry at ``now``; raise LinkError (404 / 410)."""
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"], audience=_AUDIENCE,
                            options={"verify_exp": False, "require": ["r", "exp", "aud"]})
    except jwt.PyJWTError as exc:
        raise LinkError("unknown link", 404) from exc
    if not isinstance(claims.get("r"), int):
        raise LinkError("unknown link", 404)
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    if now >= expires:
        raise LinkError("this link has expired", 410)
    return Link(report_id=claims["r"], to=str(claims.get("to") or ""), expires_at=expires)


def url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/reports/links/{token}"
