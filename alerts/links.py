"""Signed, short-lived links in notifications: open one alarm in the PWA and acknowledge it without signing in.

The token is a JWT (HS256, PyJWT) under a key derived from ``EHS_SECRET_KEY`` for this purpose only; it names
one alarm and one recipient (``u``, the user the message was sent to, or none for a group chat, in which case
the link shows the alarm but cannot acknowledge it) and expires after ``link_ttl_s`` (30 minutes by default).
The token is the credential: whoever holds the message may acknowledge as its recipient, for as long as the
alarm needs it and the token lives, which is the point of the link (the ack is audited with that user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from core.commands import hkdf_sha256

_AUDIENCE = "ehs-link"


class LinkError(Exception):
    """``status`` 404 for an unknown or forged token, 410 for an expired one."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Link:
    alarm_id: int
    user_id: int | None
    expires_at: datetime


def _key(secret: str) -> bytes:
    return hkdf_sha256(secret.encode(), salt=b"ehs-monitor/links", info=b"alarm-link:v1")


def make(secret: str, *, alarm_id: int, user_id: int | None, now: datetime, ttl: timedelta) -> str:
    claims = {"a": alarm_id, "u": user_id, "aud": _AUDIENCE, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, _key(secret), algorithm="HS256")


def read(secret: str, token: str, *, now: datetime) -> Link:
    """Check the signature and the expiry at ``now``; raise LinkError (404 / 410)."""
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"], audience=_AUDIENCE,
                            options={"verify_exp": False, "require": ["a", "exp", "aud"]})
    except jwt.PyJWTError as exc:
        raise LinkError("unknown link", 404) from exc
    if not isinstance(claims.get("a"), int) or not isinstance(claims.get("u"), int | None):
        raise LinkError("unknown link", 404)
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    if now >= expires:
        raise LinkError("this link has expired", 410)
    return Link(alarm_id=claims["a"], user_id=claims.get("u"), expires_at=expires)


def path(alarm_id: int, token: str) -> str:
    """The PWA route that opens the alarm (the push payload's ``url``)."""
    return f"/app/#/alarms/{alarm_id}?t={token}"
