"""Signed, expiring link tokens (JWT, HS256, PyJWT), one key per purpose derived from the service secret.

Alarm links (``alerts.notifications.links``) and report download links (``reports.links``) are both such tokens;
each names its own purpose (the HKDF info and the JWT audience), so a token minted for one can never be read as the
other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from core.keys import Keyring, current, hkdf_sha256


class LinkError(Exception):
    """``status`` 404 for an unknown or forged token, 410 for an expired one."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _key(secret: str, purpose: str) -> bytes:
    return hkdf_sha256(secret.encode(), salt=b"ehs-monitor/links", info=purpose.encode())


def sign(
    secret: str | Keyring, *, purpose: str, audience: str, claims: dict[str, Any], now: datetime, ttl: timedelta
) -> str:
    """A token carrying ``claims`` for ``purpose``, valid from ``now`` for ``ttl``."""
    body = {**claims, "aud": audience, "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(body, _key(current(secret), purpose), algorithm="HS256")


def verify(
    secret: str | Keyring, token: str, *, purpose: str, audience: str, required: list[str], now: datetime
) -> tuple[dict[str, Any], datetime]:
    """The claims and expiry of a genuine token; LinkError 404 if forged or malformed, 410 if expired at ``now``.

    A link signed under a previous secret of the keyring (before a rotation) is still genuine.
    """
    claims: dict[str, Any] | None = None
    for candidate in Keyring.of(secret).secrets:
        try:
            claims = jwt.decode(
                token,
                _key(candidate, purpose),
                algorithms=["HS256"],
                audience=audience,
                options={"verify_exp": False, "require": [*required, "exp", "aud"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise LinkError("unknown link", 404) from exc
    if claims is None:
        raise LinkError("unknown link", 404)
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    if now >= expires:
        raise LinkError("this link has expired", 410)
    return claims, expires
