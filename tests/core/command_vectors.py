"""Builds ``core/testvectors/commands.json`` (run ``python -m tests.core.command_vectors`` to write it again after a
deliberate change of the contract; the test checks the committed file against the code, never the reverse)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from core.commands import _SALT, KEY_EPOCH, DeviceCommandState, canonical, check_command, device_key, sign

PATH = Path(__file__).resolve().parents[2] / "core" / "testvectors" / "commands.json"
SECRET = "test-vector-secret-not-for-production-0123456789"
SITE, DEVICE = "cz01", "form-fan-01"
T = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms


def _command(command_id: str, action: str, issued: int, ttl_ms: int = 60_000, **extra) -> dict:
    return {
        "id": command_id,
        "action": action,
        "params": extra.pop("params", {}),
        "issued_at": issued,
        "expires_at": issued + ttl_ms,
        "alarm_id": extra.pop("alarm_id", None),
        "drill": False,
    }


def _signed(body: dict, key: bytes) -> dict:
    return {**body, "sig": sign(body, key)}


def build() -> dict:
    key = device_key(SECRET, SITE, DEVICE)
    other = device_key(SECRET, "cz02", DEVICE)
    a = _signed(_command("7d2f1a6e-0000-4000-8000-00000000000a", "exhaust_fan.on", T, alarm_id=42), key)
    b = _command("7d2f1a6e-0000-4000-8000-00000000000b", "exhaust_fan.off", T + 2_000)
    c = _signed(_command("7d2f1a6e-0000-4000-8000-00000000000c", "exhaust_fan.on", T + 1_500), key)
    d = _signed(_command("7d2f1a6e-0000-4000-8000-00000000000d", "exhaust_fan.on", T - 120_000), key)
    e = _signed(_command("7d2f1a6e-0000-4000-8000-00000000000e", "exhaust_fan.on", T + 3_600_000), key)
    f = _signed(_command("7d2f1a6e-0000-4000-8000-00000000000f", "exhaust_fan.on", T + 4_000), key)
    g = _command("7d2f1a6e-0000-4000-8000-000000000010", "exhaust_fan.on", T + 5_000)
    steps = [
        ("a valid command", T + 1_000, a, "accept", ""),
        ("the service retries it (same id, same signature)", T + 3_000, a, "duplicate", "already accepted"),
        (
            "a forged command (bad signature) plants id B",
            T + 3_000,
            {**_signed(b, key), "sig": "00" * 32},
            "refuse",
            "bad signature",
        ),
        ("the real B is accepted: the forgery was not remembered", T + 3_100, _signed(b, key), "accept", ""),
        (
            "a forgery reusing the id of accepted A gets no answer",
            T + 3_200,
            {**a, "action": "exhaust_fan.off"},
            "ignore",
            "bad signature",
        ),
        ("C issued before B (a replay or a stale command)", T + 3_300, c, "refuse", "replayed or stale"),
        ("expired", T + 3_400, d, "refuse", "expired"),
        ("issued an hour ahead of the device clock", T + 3_500, e, "refuse", "future"),
        ("signed for the same device code on another site", T + 3_600, _signed(g, other), "refuse", "bad signature"),
        ("a field added after signing", T + 3_700, {**f, "params": {"speed": 2}}, "refuse", "bad signature"),
        ("missing fields", T + 3_800, {"id": "x", "action": "exhaust_fan.on"}, "refuse", "missing fields"),
        ("F, newer than B", T + 4_100, f, "accept", ""),
    ]
    state = DeviceCommandState()
    sequence = []
    for note, now, payload, expect, reason in steps:
        raw = orjson.dumps(payload).decode()
        verdict = check_command(raw, key, state, now_ms=now)
        assert verdict.outcome == expect and reason in verdict.reason, (note, verdict)
        sequence.append({"note": note, "now_ms": now, "payload": raw, "expect": expect, "reason_contains": reason})
    unicode_body = _command(
        "7d2f1a6e-0000-4000-8000-000000000011",
        "valve.close",
        T,
        params={"zone": "注液区", "b": 1, "a": {"z": True, "y": None}},
    )
    return {
        "description": "Interlock command test vectors of ehs-monitor (core/commands.py: the device-side contract). "
        "Keys: HKDF-SHA256 (RFC 5869) of the secret's UTF-8 bytes with salt and info as given, 32 "
        "bytes. Canonical JSON: every field but sig, keys sorted at every level, no whitespace, "
        "UTF-8 (non-ASCII not escaped), integers as integers; sig is the lowercase hex "
        "HMAC-SHA256 of it. A device runs 'sequence' in order with one fresh state and must "
        "reach each 'expect' (accept: act; duplicate: answer the previous answer again; refuse: "
        "answer 'rejected'; ignore: answer nothing).",
        "hkdf": {
            "hash": "SHA-256",
            "salt_utf8": _SALT.decode(),
            "info_format": "{key_epoch}:{site}/{device}",
            "key_epoch": KEY_EPOCH,
            "length": 32,
        },
        "keys": [
            {
                "secret_utf8": SECRET,
                "site": s,
                "device": dev,
                "info_utf8": f"{KEY_EPOCH}:{s}/{dev}",
                "key_hex": device_key(SECRET, s, dev).hex(),
            }
            for s, dev in ((SITE, DEVICE), ("cz02", DEVICE))
        ],
        "signatures": [
            {
                "key_hex": key.hex(),
                "payload": body,
                "canonical_utf8": canonical(body).decode(),
                "sig_hex": sign(body, key),
            }
            for body in ({k: v for k, v in a.items() if k != "sig"}, unicode_body)
        ],
        "sequence": {"key_hex": key.hex(), "site": SITE, "device": DEVICE, "max_skew_ms": 30_000, "steps": sequence},
    }


if __name__ == "__main__":
    PATH.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
