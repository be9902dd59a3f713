"""Signed download links for reports sent to chat channels: the token names one archived report and expires
(7 days by default). It is a JWT (HS256) under a key derived from ``EHS_SECRET_KEY`` for this purpose only; the
token is the credential, and every download through it is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.keys import Keyring
from core.links import LinkError, sign, verify

__all__ = ["TTL", "Link", "LinkError", "make", "read", "url"]

_AUDIENCE = "ehs-report-link"
_PURPOSE = "report-link:v1"
TTL = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Link:
    report_id: int
    to: str
    expires_at: datetime


def make(secret: str | Keyring, *, report_id: int, to: str, now: datetime, ttl: timedelta = TTL) -> str:
    return sign(secret, purpose=_PURPOSE, audience=_AUDIENCE, claims={"r": report_id, "to": to}, now=now, ttl=ttl)


def read(secret: str | Keyring, token: str, *, now: datetime) -> Link:
    """Check the signature and the expiry at ``now``; raise LinkError (404 / 410)."""
    claims, expires = verify(secret, token, purpose=_PURPOSE, audience=_AUDIENCE, required=["r"], now=now)
    if not isinstance(claims.get("r"), int):
        raise LinkError("unknown link", 404)
    return Link(report_id=claims["r"], to=str(claims.get("to") or ""), expires_at=expires)


def url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/v1/reports/links/{token}"
