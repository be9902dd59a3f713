"""Secrets at rest of the notifier: channel URLs (they carry bot tokens, signing secrets, SMTP passwords) and
the VAPID private key, sealed by ``core.keys`` (Fernet under a key derived from ``EHS_SECRET_KEY``; a keyring with
the previous secrets still reads what they sealed).

``redact`` is the only form of a channel URL that may be logged or returned by the API.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from core import keys
from core.keys import Keyring, SealError

__all__ = ["SealError", "redact", "scrub", "seal", "unseal"]

_SCHEMES = {
    "mailto",
    "mailtos",
    "https",
    "localhost",
    "dingtalk",
    "wecombot",
    "wecomapp",
    "feishu",
    "json",
    "jsons",
    "lark",
}


def seal(secret: str | Keyring, value: str, *, purpose: str = "channel-url") -> bytes:
    return keys.seal(secret, value, purpose=purpose)


def unseal(secret: str | Keyring, token: bytes, *, purpose: str = "channel-url") -> str:
    return keys.unseal(secret, bytes(token), purpose=purpose)


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
