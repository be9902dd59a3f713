"""The service secret (``EHS_SECRET_KEY``): checked, or generated once per data directory.

Everything that is signed or sealed (command keys, notification links, sealed channel URLs and TOTP seeds, access
tokens) derives from it, so it must never be a value anyone can read in this repository:

* production (``EHS_ENVIRONMENT=production``) requires an explicit value of at least 32 random bytes (e.g.
  ``python -c 'import secrets; print(secrets.token_urlsafe(48))'``); short, repetitive, low-entropy and
  placeholder values are refused with the reason;
* development without ``EHS_SECRET_KEY`` uses ``{data_dir}/secret.key``: 48 random bytes made on first start
  (mode 0600, created atomically so that processes starting together agree), then read by every process of the
  same data directory (``ehs up``, the services, the CLI, tests that spawn them);
* a placeholder (``change-me`` and the like) is refused everywhere: no service signs with a public value.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import stat
from collections import Counter
from pathlib import Path

SECRET_FILE = "secret.key"
#: Random bytes a production secret must carry at least (256 bits, the HMAC-SHA256 key size).
MIN_BYTES = 32
_PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "replace-me", "your-secret", "example")


class SecretError(ValueError):
    """The secret is missing, a placeholder or too weak; the message says what to do."""


def is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return not low or any(p in low for p in _PLACEHOLDERS)


def weakness(value: str) -> str | None:
    """Why ``value`` is not a production secret of at least 32 random bytes, or None."""
    if is_placeholder(value):
        return "is a placeholder"
    if len(value) < MIN_BYTES:
        return f"is {len(value)} characters long; at least {MIN_BYTES} random bytes are needed"
    for period in range(1, len(value) // 2 + 1):
        if value == (value[:period] * (len(value) // period + 1))[: len(value)]:
            return "is a repeated pattern"
    steps = Counter(ord(b) - ord(a) for a, b in zip(value, value[1:], strict=False))
    if steps.most_common(1)[0][1] > len(value) // 3:
        return "is a sequence (abcd..., 1234...)"
    counts = Counter(value)
    bits = -sum(n * math.log2(n / len(value)) for n in counts.values())  # Shannon estimate of the whole value
    if bits < 8 * MIN_BYTES * 0.5 or len(counts) < 12:
        return f"looks low in entropy (about {bits:.0f} bits estimated; random text of 32 bytes or more is needed)"
    return None


def check(value: str, *, name: str, production: bool) -> None:
    """Refuse a placeholder anywhere and a weak value in production (``SecretError`` naming the variable)."""
    if is_placeholder(value):
        raise SecretError(
            f"{name} is a placeholder: set a random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if production and (why := weakness(value)) is not None:
        raise SecretError(
            f"{name} {why} (production needs at least {MIN_BYTES} random bytes, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def load_or_create(data_dir: Path) -> str:
    """The secret kept in ``data_dir/secret.key``, made on first use (0600); shared by every process of the dir."""
    path = Path(data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{path} is readable by other users (mode {stat.filemode(mode)}): chmod 600 it")
    value = path.read_text().strip()
    if (why := weakness(value)) is not None:
        raise SecretError(
            f"{path} {why}: delete it to have a new one made (sealed channel URLs and TOTP seeds, "
            "and provisioned device keys, then need setting again)"
        )
    return value
