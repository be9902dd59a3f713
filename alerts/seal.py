"""Secrets at rest of the notifier: channel URLs (they carry bot tokens, signing secrets, SMTP passwords) and
the VAPID private key, sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from ``EHS_SECRET_KEY``
with HKDF-SHA256 (RFC 5869), the derivation the interlock signing keys use (``core.commands``).

``redact`` is the only form of a channel URL that may be logged or returned by the API.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from core.commands import hkdf_sha256

_SALT = b"ehs-monitor/notify"
_SCHEMES = {"mailto", "mailtos", "https", "localhost", "dingtalk", "wecombot", "wecomapp", "feishu", "json", "jsons",
            "lark"}


class SealError(Exception):
    """The sealed value was not made with this EHS_SECRET_KEY (or was altered)."""


def _fernet(secret: str, purpose: str) -> Fernet:
    key = hkdf_sha256(secret.encode(), salt=_SALT, info=f"seal:{purpose}:v1".encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, value: str, *, purpose: str = "channel-url") -> bytes:
    return _fernet(secret, purpose).encrypt(value.encode())


def unseal(secret: str, token: bytes, *, purpose: str = "channel-url") -> str:
    try:
        return _fernet(secret, purpose).decrypt(bytes(token)).decode()
    except InvalidToken as exc:
        raise SealError(f"cannot unseal the {purpose}: was EHS_SECRET_KEY changed?") from exc


def redact(url: str) -> str:
    """``scheme://host/...`` with every credential, path segment and query value replaced by ``***``.

    What is left says which provider and which host, which is all an operator needs to tell channels apart.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    shown = f"{parts.scheme}://"
    if parts.username or parts.password:
        shown += "***@"
    # chat-bot URLs keep the token in the host part (dingtalk://TOKEN, wecombot://KEY): never show it
    shown += host if parts.scheme in ("mailto", "mailtos", "json", "jsons") else "***"
    if parts.path.strip("/"):
        shown += "/***"
    if parts.query:
        keys = sorted({kv.split("=", 1)[0] for kv in parts.query.split("&") if kv})
        shown += "?" + "&".join(f"{k}=***" for k in keys)
    return shown


def scrub(text: str, secret_url: str) -> str:
    """Remove from ``text`` (an error message) every part of ``secret_url`` that could be a secret."""
    for piece in sorted(set(re.split(r"[/:@?&=#+,]", secret_url)), key=len, reverse=True):
        if len(piece) >= 6 and piece not in _SCHEMES:
            text = text.replace(piece, "***")
    return text
