"""The interlock command contract (ARCHITECTURE.md, MQTT contract): payloads, per-device keys and signatures.

A command is ``{"id", "action", "params", "issued_at", "expires_at", "alarm_id", "drill", "sig"}`` on
``ehs/v1/{site}/{device}/cmd``; times are epoch milliseconds. ``sig`` is the hex HMAC-SHA256 of the canonical
JSON of the other fields (keys sorted at every level, no whitespace, UTF-8), keyed per device, so a client that
may publish on the broker still cannot forge or redirect an interlock: a command signed for one device does not
verify on another.

Per-device keys are derived from the one service secret (``EHS_SECRET_KEY``) with HKDF-SHA256 (RFC 5869),
``info = "{site}/{device}"``. Why derived rather than stored: there is no key table to back up, leak or keep in
step with the registry; a device is provisioned once with its own key (``ehs keys device SITE DEVICE``), and a
device that is opened up reveals neither the secret nor any other device's key. Rotating the secret re-keys
every device at once; ``KEY_EPOCH`` is part of the derivation so that a future per-device rotation can change
it without a new scheme.

Acknowledgements (``.../cmd/ack``) are ``{"id", "status", "detail", "state"}`` with status ``accepted``,
``done``, ``rejected`` or ``failed``. This module is pure; devices (the simulator) and the service both use it.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

KEY_EPOCH = 1
_SALT = b"ehs-monitor/v1/interlock-command"
FIELDS = ("id", "action", "params", "issued_at", "expires_at", "alarm_id", "drill")
ACK_STATUSES = ("accepted", "done", "rejected", "failed")
#: A device accepts a command issued at most this far ahead of its own clock (clock skew).
MAX_SKEW_MS = 30_000

#: The actions an actuator of each device kind understands (the vocabulary of the simulator and of plans).
KIND_ACTIONS: dict[str, tuple[str, ...]] = {
    "exhaust_fan": ("exhaust_fan.on", "exhaust_fan.off"),
    "sprinkler": ("sprinkler.on", "sprinkler.off"),
    "supply_valve": ("valve.close", "valve.open"),
    "line_controller": ("line.stop", "line.start"),
    "formation_cabinet": ("charge.stop", "charge.resume"),
    "grading_cabinet": ("charge.stop", "charge.resume"),
    "aging_rack": ("charge.stop", "charge.resume"),
}


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF extract-and-expand with SHA-256 (RFC 5869 section 2)."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def device_key(secret: str | bytes, site: str, device: str) -> bytes:
    """The signing key of one device, derived from the service secret."""
    ikm = secret.encode() if isinstance(secret, str) else secret
    return hkdf_sha256(ikm, salt=_SALT, info=f"{KEY_EPOCH}:{site}/{device}".encode())


def canonical(payload: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: every field but ``sig``, keys sorted, compact, UTF-8."""
    return orjson.dumps({k: v for k, v in payload.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


def sign(payload: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(payload), hashlib.sha256).hexdigest()


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def new_command(*, action: str, params: Mapping[str, Any] | None, issued_at: datetime, ttl: timedelta,
                alarm_id: int | None = None, drill: bool = False, command_id: str | None = None) -> dict[str, Any]:
    """An unsigned command payload (``signed`` adds ``sig``)."""
    return {"id": command_id or str(uuid.uuid4()), "action": action, "params": dict(params or {}),
            "issued_at": to_ms(issued_at), "expires_at": to_ms(issued_at + ttl), "alarm_id": alarm_id,
            "drill": bool(drill)}


def signed(payload: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    body = {k: payload[k] for k in FIELDS}
    return {**body, "sig": sign(body, key)}


def refusal(payload: object, key: bytes, *, now_ms: int, max_skew_ms: int = MAX_SKEW_MS) -> str | None:
    """Why a device must refuse this command, or None when it may obey it (the device-side check)."""
    if not isinstance(payload, dict):
        return "not a JSON object"
    missing = [name for name in (*FIELDS, "sig") if name not in payload]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    if set(payload) - {*FIELDS, "sig"}:
        return f"unexpected fields: {', '.join(sorted(set(payload) - {*FIELDS, 'sig'}))}"
    sig = payload["sig"]
    if not isinstance(sig, str) or not hmac.compare_digest(sig, sign(payload, key)):
        return "bad signature"
    issued, expires = payload["issued_at"], payload["expires_at"]
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (issued, expires)):
        return "issued_at and expires_at must be epoch milliseconds"
    if now_ms > expires:
        return f"expired {now_ms - expires} ms ago"
    if issued > now_ms + max_skew_ms:
        return "issued in the future (clock skew)"
    if not isinstance(payload["action"], str) or not isinstance(payload["params"], dict):
        return "bad action or params"
    return None


def ack(command_id: str, status: str, detail: str = "", state: Mapping[str, Any] | None = None) -> bytes:
    """An acknowledgement payload."""
    if status not in ACK_STATUSES:
        raise ValueError(f"ack status must be one of {ACK_STATUSES}")
    return orjson.dumps({"id": command_id, "status": status, "detail": detail, "state": dict(state or {})})
