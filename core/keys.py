"""Keys from one place: every key derived from the service secret (``EHS_SECRET_KEY``), and sealing of secrets at
rest, with rotation of the service secret.

Derivation uses ``cryptography``'s HKDF-SHA256 (RFC 5869), never a hand-written one:

* ``hkdf_sha256`` (extract and expand): per-device command keys (``core.commands``), link keys (``core.links``),
  the audit chain (``core.audit``) and the sealing keys below;
* ``label_key``: the API's keys (access tokens; the TOTP seeds' former AES-GCM key), which have always been
  ``HMAC-SHA256(secret, "ehs-monitor/{purpose}/v1")``, i.e. RFC 5869's extract step with the secret as salt and the
  label as input keying material; kept so that the keys stay the same bytes (tokens and sealed data survive).

``core/testvectors/keys.json`` holds keys and sealed values made by the code this module replaced, for fixed
inputs; the tests check this module against them and against RFC 5869's own test vectors.

**Sealing** is one scheme: Fernet (AES-128-CBC + HMAC-SHA256), one key per purpose derived from the secret. A
``context`` (e.g. ``totp:42``) binds a sealed value to its row: it is sealed together with the value and checked
on unsealing, so a value copied to another row does not unseal. Values sealed by the former API scheme (a frame
``0x01 | nonce | AES-256-GCM ciphertext``, the context as associated data) are still read; ``ehs keys reseal``
re-seals them as Fernet tokens.

**Rotation.** A ``Keyring`` is the current secret and the previous ones (``EHS_SECRET_KEY_PREVIOUS``, a comma list):
sealing uses the current secret, unsealing tries each (``MultiFernet``); ``ehs keys reseal`` re-seals every sealed
value under the current secret, after which the previous secrets can be dropped. See README, "Rotating the secret".
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import sql

#: The salt of the sealing keys (named after the notifier, the first user of sealing: changing it would change
#: every sealing key).
_SEAL_SALT = b"ehs-monitor/notify"
#: First byte of the former API frames (AES-256-GCM); Fernet tokens start with 0x80, base64url-encoded ("g").
_LEGACY_FRAME = b"\x01"
#: Purposes whose former frames were sealed under a ``label_key`` (purpose -> label).
_LEGACY_LABELS = {"totp": "totp-seal"}
_CONTEXT_SEP = b"\x00"


class SealError(Exception):
    """The sealed value was not made with any secret of the keyring (or was altered, or belongs to another row)."""


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF extract-and-expand with SHA-256 (RFC 5869 section 2); an empty salt means zeros, as the RFC says."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def label_key(secret: str, purpose: str) -> bytes:
    """The API's 256-bit key for one purpose: RFC 5869 extract, salt = the secret, input = the purpose's label."""
    return HKDF.extract(hashes.SHA256(), secret.encode(), f"ehs-monitor/{purpose}/v1".encode())


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current service secret and the previous ones (newest first), still accepted for reading."""

    current: str
    previous: tuple[str, ...] = ()

    @classmethod
    def of(cls, secret: str | Keyring) -> Keyring:
        return secret if isinstance(secret, Keyring) else cls(secret)

    @classmethod
    def parse_previous(cls, current: str, previous: str | None) -> Keyring:
        """A keyring from ``EHS_SECRET_KEY`` and ``EHS_SECRET_KEY_PREVIOUS`` (comma-separated, newest first)."""
        old = tuple(p.strip() for p in (previous or "").split(",") if p.strip() and p.strip() != current)
        return cls(current, old)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.current, *self.previous)


def current(secret: str | Keyring) -> str:
    """The secret that signs and seals (the keyring's current one)."""
    return secret.current if isinstance(secret, Keyring) else secret


@functools.lru_cache(maxsize=256)
def _fernet(secret: str, purpose: str) -> Fernet:
    key = hkdf_sha256(secret.encode(), salt=_SEAL_SALT, info=f"seal:{purpose}:v1".encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _multi(ring: Keyring, purpose: str) -> MultiFernet:
    return MultiFernet([_fernet(s, purpose) for s in ring.secrets])


def _bind(value: bytes, context: str) -> bytes:
    return context.encode() + _CONTEXT_SEP + value if context else value


def _unbind(plain: bytes, context: str, purpose: str) -> bytes:
    if not context:
        return plain
    head, sep, value = plain.partition(_CONTEXT_SEP)
    if not sep or head != context.encode():
        raise SealError(f"the sealed {purpose} belongs to another record")
    return value


def seal(secret: str | Keyring, value: str, *, purpose: str, context: str = "") -> bytes:
    """A Fernet token of ``value`` under the current secret's key for ``purpose`` (bound to ``context``)."""
    return _fernet(current(secret), purpose).encrypt(_bind(value.encode(), context))


def unseal(secret: str | Keyring, token: bytes, *, purpose: str, context: str = "") -> str:
    """The value sealed in ``token`` by any secret of the keyring (or by the former AES-GCM scheme); SealError
    if none made it, it was altered, or it belongs to another ``context``."""
    ring, token = Keyring.of(secret), bytes(token)
    if token[:1] == _LEGACY_FRAME:
        return _unseal_legacy(ring, token, purpose=purpose, context=context)
    try:
        plain = _multi(ring, purpose).decrypt(token)
    except InvalidToken as exc:
        raise SealError(
            f"cannot unseal the {purpose}: was EHS_SECRET_KEY changed without EHS_SECRET_KEY_PREVIOUS?"
        ) from exc
    return _unbind(plain, context, purpose).decode()


def _unseal_legacy(ring: Keyring, frame: bytes, *, purpose: str, context: str) -> str:
    label = _LEGACY_LABELS.get(purpose)
    if label is not None and len(frame) >= 14:
        for secret in ring.secrets:
            try:
                return AESGCM(label_key(secret, label)).decrypt(frame[1:13], frame[13:], context.encode()).decode()
            except InvalidTag:
                continue
    raise SealError(f"cannot unseal the {purpose}: was EHS_SECRET_KEY changed without EHS_SECRET_KEY_PREVIOUS?")


def needs_reseal(secret: str | Keyring, token: bytes, *, purpose: str) -> bool:
    """True if ``token`` is a former frame or was sealed by a previous secret (``reseal`` would change it)."""
    token = bytes(token)
    if token[:1] == _LEGACY_FRAME:
        return True
    try:
        _fernet(current(secret), purpose).decrypt(token)
    except InvalidToken:
        return True
    return False


def reseal(secret: str | Keyring, token: bytes, *, purpose: str, context: str = "") -> bytes:
    """``token`` sealed again under the current secret (readable by any secret of the keyring); SealError if not."""
    return seal(secret, unseal(secret, token, purpose=purpose, context=context), purpose=purpose, context=context)


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """Where sealed values live: a ``bytea`` column of a table with an ``id``, its purpose and context format."""

    table: str
    column: str
    purpose: str
    context: str = ""  # a format of the row's id, e.g. "totp:{id}"; empty: not bound to the row


#: Every column that holds sealed values (a test compares it with the migrated schema): ``reseal_all`` walks them.
SEALED_COLUMNS = (
    SealedColumn("notification_channel", "url_sealed", "channel-url"),
    SealedColumn("vapid_key", "private_sealed", "vapid-private-key"),
    SealedColumn("app_user", "mfa_secret", "totp", "totp:{id}"),
    SealedColumn("app_user", "mfa_pending_secret", "totp", "totp:{id}"),
)


def reseal_all(
    conn: psycopg.Connection, secret: str | Keyring, *, columns: tuple[SealedColumn, ...] = SEALED_COLUMNS
) -> dict[str, int]:
    """Seal every sealed value again under the current secret, in the caller's transaction; return how many
    values of each column changed. SealError (naming the row) if one is readable by no secret of the keyring:
    the caller rolls back, nothing is half done."""
    done: dict[str, int] = {}
    for col in columns:
        name = f"{col.table}.{col.column}"
        done[name] = 0
        rows = conn.execute(
            sql.SQL("SELECT id, {c} FROM {t} WHERE {c} IS NOT NULL AND length({c}) > 0 ORDER BY id FOR UPDATE").format(
                c=sql.Identifier(col.column), t=sql.Identifier(col.table)
            )
        ).fetchall()
        for row in rows:
            row_id, token = (row["id"], row[col.column]) if isinstance(row, dict) else row
            if not needs_reseal(secret, token, purpose=col.purpose):
                continue
            try:
                fresh = reseal(secret, token, purpose=col.purpose, context=col.context.format(id=row_id))
            except SealError as exc:
                raise SealError(f"{name} of row {row_id}: {exc}") from None
            conn.execute(
                sql.SQL("UPDATE {t} SET {c} = %s WHERE id = %s").format(
                    c=sql.Identifier(col.column), t=sql.Identifier(col.table)
                ),
                (fresh, row_id),
            )
            done[name] += 1
    return done
