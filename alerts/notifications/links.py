"""Signed, short-lived links in notifications: open one alarm in the PWA and acknowledge it without signing in.

The token is a JWT (HS256, PyJWT) under a key derived from ``EHS_SECRET_KEY`` for this purpose only; it names
one alarm and one recipient (``u``, the user the message was sent to, or none for a group chat, in which case
the link shows the alarm but cannot acknowledge it) and expires after ``link_ttl_s`` (30 minutes by default).
The token is the credential: whoever holds the message may acknowledge as its recipient, for as long as the
alarm needs it and the token lives, which is the point of the link (the ack is audited with that user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.keys import Keyring
from core.links import LinkError, sign, verify

__all__ = ["Link", "LinkError", "make", "path", "read"]

_AUDIENCE = "ehs-link"
_PURPOSE = "alarm-link:v1"


@dataclass(frozen=True, slots=True)
class Link:
    alarm_id: int
    user_id: int | None
    expires_at: datetime


def make(secret: str | Keyring, *, alarm_id: int, user_id: int | None, now: datetime, ttl: timedelta) -> str:
    return sign(secret, purpose=_PURPOSE, audience=_AUDIENCE, claims={"a": alarm_id, "u": user_id}, now=now, ttl=ttl)


def read(secret: str | Keyring, token: str, *, now: datetime) -> Link:
    """Check the signature and the expiry at ``now``; raise LinkError (404 / 410)."""
    claims, expires = verify(secret, token, purpose=_PURPOSE, audience=_AUDIENCE, required=["a"], now=now)
    if not isinstance(claims.get("a"), int) or not isinstance(claims.get("u"), int | None):
        raise LinkError("unknown link", 404)
    return Link(alarm_id=claims["a"], user_id=claims.get("u"), expires_at=expires)


def path(alarm_id: int, token: str) -> str:
    """The PWA route that opens the alarm (the push payload's ``url``)."""
    return f"/app/#/alarms/{alarm_id}?t={token}"
