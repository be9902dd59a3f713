"""Security primitives: argon2 password hashes, JWT access tokens, random secrets, TOTP.

Pure functions over well-kept libraries (argon2-cffi, PyJWT, pyotp); no database here. Keys derived from the
service secret and sealing of secrets at rest: ``core.keys``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ISSUER = "ehs-monitor"
AUDIENCE = "ehs-api"
_ALGORITHM = "HS256"
#: Passwords: at least this long (NIST SP 800-63B 3.1.1.2 favours length over composition rules); the upper
#: bound keeps hashing cost bounded.
PASSWORD_MIN = 10
PASSWORD_MAX = 128
API_KEY_PREFIX = "ehs_"
_ALPHANUM = "abcdefghijklmnopqrstuvwxyz0123456789"


# --- passwords ------------------------------------------------------------------------------------------


@functools.cache
def _hasher() -> PasswordHasher:
    # argon2id with argon2-cffi's defaults: the RFC 9106 "second recommended option" (64 MiB, t=3, p=4)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def verify_password(stored: str | None, password: str) -> tuple[bool, bool]:
    """Return (matches, needs_rehash). With no stored hash, spend the same time and return False."""
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, False
    if stored is None:
        return False, False
    return True, _hasher().check_needs_rehash(stored)


def check_password_policy(password: str) -> str | None:
    """Return why a new password is refused, or None."""
    if len(password) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters"
    if len(set(password)) < 4:
        return "is too repetitive"
    return None


def one_time_password() -> str:
    """A random password for a new or reset account, shown once (about 120 bits)."""
    return secrets.token_urlsafe(15)


# --- random secrets: refresh tokens and API keys ----------------------------------------------------------


def digest(secret: str) -> bytes:
    """SHA-256 of a high-entropy secret (what the database stores)."""
    return hashlib.sha256(secret.encode()).digest()


def new_refresh_token() -> str:
    return "ehsr_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    prefix: str
    key: str  # shown once
    key_hash: bytes


def new_api_key() -> NewApiKey:
    prefix = "".join(secrets.choice(_ALPHANUM) for _ in range(8))
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(prefix, key, digest(key))


def split_api_key(key: str) -> str | None:
    """Return the prefix of a well-formed API key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not rest or any(c not in _ALPHANUM for c in prefix):
        return None
    return prefix


def same_digest(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# --- access tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    token_version: int
    expires_at: datetime


class TokenError(Exception):
    """The token is missing, malformed, forged or expired (the message says which, for the client)."""


def encode_access_token(
    *, key: bytes, user_id: int, token_version: int, now: datetime, lifetime: timedelta
) -> tuple[str, datetime]:
    expires = now + lifetime
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "sv": token_version,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM), expires


def decode_access_token(token: str, *, key: bytes) -> AccessClaims:
    """Verify signature, issuer, audience and expiry (PyJWT, RFC 7519 section 7.2)."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sv", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError:
        raise TokenError("invalid token") from None
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit() or not isinstance(claims["sv"], int):
        raise TokenError("invalid token")
    return AccessClaims(int(claims["sub"]), claims["sv"], datetime.fromtimestamp(claims["exp"], UTC))


# --- TOTP (RFC 6238) ----------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps read from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def verify_totp(secret: str, code: str, *, now: datetime, last_step: int | None) -> int | None:
    """Return the time step the code belongs to, or None.

    One step of clock drift either way is accepted (RFC 6238 section 5.2), and a step at or before the last
    accepted one is refused, so an observed code cannot be replayed.
    """
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            return step
    return None


def totp_now(secret: str, now: datetime) -> str:
    """The code an authenticator shows at ``now`` (tests and the CLI)."""
    return pyotp.TOTP(secret).at(now)
