"""The interlock command contract (ARCHITECTURE.md, MQTT contract): payloads, per-device keys and signatures.

A command is ``{"id", "action", "params", "issued_at", "expires_at", "alarm_id", "drill", "sig"}`` on
``ehs/v1/{site}/{device}/cmd``; times are epoch milliseconds. ``sig`` is the hex HMAC-SHA256 of the canonical
JSON of the other fields (keys sorted at every level, no whitespace, UTF-8), keyed per device, so a client that
may publish on the broker still cannot forge or redirect an interlock: a command signed for one device does not
verify on another.

Per-device keys are derived from the one service secret (``EHS_SECRET_KEY``) with HKDF-SHA256 (RFC 5869,
``core.keys``), ``info = "{site}/{device}"``. Why derived rather than stored: there is no key table to back up,
leak or keep in step with the registry; a device is provisioned once with its own key (``ehs alarms key SITE
DEVICE``), and a device that is opened up reveals neither the secret nor any other device's key. Rotating the
secret re-keys every device at once; ``KEY_EPOCH`` is part of the derivation so that a future per-device
rotation can change it without a new scheme.

Acknowledgements (``.../cmd/ack``) are ``{"id", "status", "detail", "state"}`` with status ``accepted``,
``done``, ``rejected`` or ``failed``. This module is pure; devices (the simulator) and the service both use it.

**The device-side contract** is ``check_command`` with one ``DeviceCommandState`` per device (a firmware port
does the same steps in the same order; ``core/testvectors/commands.json`` has inputs and expected answers):

1. the payload must be a JSON object with every field and nothing else, and ``sig`` must verify under the
   device's own key: a command that does not verify is refused and *not remembered*, so junk on ``.../cmd``
   can neither flush the memory of real ids nor plant an id that a later real command would collide with
   (and one that reuses the id of an accepted command gets no answer at all: a "rejected" would tell the
   service that the real command failed);
2. a verified id the device has already accepted is a *duplicate* (the service retries with the same id and
   signature): the device answers again what it answered before (``accepted`` or ``done``) and does not act
   twice. Verified ids are remembered until their ``expires_at`` (after that the command is refused as
   expired anyway);
3. expired (``now > expires_at``), issued in the future beyond ``MAX_SKEW_MS``, or with bad types: refused;
4. ``issued_at`` not newer than the last accepted command's: refused as a replay (or a stale command that
   arrived after a newer one). This is what keeps a captured ``valve.open`` from being replayed within its
   lifetime once the device forgot its id, and across a reboot when the last ``issued_at`` is persisted
   (``DeviceCommandState.persist``: called with ``(issued_at, id)`` *before* the device acts; load the saved
   pair into ``last_issued_at`` / ``last_id`` at boot, e.g. with ``FileCommandCounter``).

The service side: one process's commands to one device carry increasing ``issued_at`` (epoch ms of the
service clock); ingest and the alerts worker should run on NTP-synchronised clocks, since a command issued
earlier than one the device already accepted is refused, by design.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from core.keys import hkdf_sha256

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


def new_command(
    *,
    action: str,
    params: Mapping[str, Any] | None,
    issued_at: datetime,
    ttl: timedelta,
    alarm_id: int | None = None,
    drill: bool = False,
    command_id: str | None = None,
) -> dict[str, Any]:
    """An unsigned command payload (``signed`` adds ``sig``)."""
    return {
        "id": command_id or str(uuid.uuid4()),
        "action": action,
        "params": dict(params or {}),
        "issued_at": to_ms(issued_at),
        "expires_at": to_ms(issued_at + ttl),
        "alarm_id": alarm_id,
        "drill": bool(drill),
    }


def signed(payload: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    body = {k: payload[k] for k in FIELDS}
    return {**body, "sig": sign(body, key)}


def refusal(payload: object, key: bytes, *, now_ms: int, max_skew_ms: int = MAX_SKEW_MS) -> str | None:
    """Why this command is invalid on its own (shape, signature, time), or None; without the replay memory of
    ``check_command``, which is what devices must use."""
    why = _verify(payload, key)
    if why is not None:
        return why
    issued, expires = payload["issued_at"], payload["expires_at"]  # type: ignore[index]
    if now_ms > expires:
        return f"expired {now_ms - expires} ms ago"
    if issued > now_ms + max_skew_ms:
        return "issued in the future (clock skew)"
    return None


def ack(command_id: str, status: str, detail: str = "", state: Mapping[str, Any] | None = None) -> bytes:
    """An acknowledgement payload."""
    if status not in ACK_STATUSES:
        raise ValueError(f"ack status must be one of {ACK_STATUSES}")
    return orjson.dumps({"id": command_id, "status": status, "detail": detail, "state": dict(state or {})})


# --- the device-side contract -------------------------------------------------------------------------------------

#: A device remembers at most this many accepted ids (each only until its ``expires_at``). Only verified commands
#: are remembered, so only the service fills it; when it is full the oldest id is forgotten, which is safe: a
#: replay of that id is still refused by the ``issued_at`` rule (a late retry of it is refused, not re-run).
SEEN_MAX = 4096


@dataclass
class DeviceCommandState:
    """What one device keeps between commands (``check_command`` updates it)."""

    #: ``issued_at`` (epoch ms) and id of the last accepted command; load them from storage at boot.
    last_issued_at: int | None = None
    last_id: str | None = None
    #: Called with ``(issued_at, id)`` of a command about to be accepted, before the device acts on it, to persist
    #: them (e.g. ``FileCommandCounter.save``); if it raises, the command is refused.
    persist: Callable[[int, str], None] | None = None
    #: Accepted ids -> (expires_at, the device's last answer for it, or None before it answered).
    seen: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)

    def answered(self, command_id: str, reply: bytes) -> None:
        """Record the device's latest answer to an accepted command (what a retry gets back)."""
        if command_id in self.seen:
            self.seen[command_id] = (self.seen[command_id][0], reply)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``accept``: act on ``command``; ``duplicate``: answer ``previous`` again (None: only the id was persisted,
    after a reboot), do not act; ``refuse``: acknowledge ``rejected`` with ``reason`` (if there is an id);
    ``ignore``: send nothing (a forgery that reuses the id of an accepted command)."""

    outcome: Literal["accept", "duplicate", "refuse", "ignore"]
    reason: str = ""
    command_id: str | None = None
    command: dict[str, Any] | None = None
    previous: bytes | None = None


def check_command(
    raw: bytes | str | Mapping[str, Any],
    key: bytes,
    state: DeviceCommandState,
    *,
    now_ms: int,
    max_skew_ms: int = MAX_SKEW_MS,
) -> Verdict:
    """The device-side check of one command on ``.../cmd`` (the contract in the module docstring)."""
    if isinstance(raw, bytes | str):
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Verdict("refuse", "not JSON")
    else:
        payload = dict(raw)
    command_id = payload.get("id") if isinstance(payload, dict) else None
    command_id = command_id if isinstance(command_id, str) else None
    why = _verify(payload, key)
    if why is not None:  # 1: never remember what does not verify
        if command_id in state.seen or (command_id is not None and command_id == state.last_id):
            # a forgery reusing the id of a real command: answering "rejected" would mark the real one failed
            return Verdict("ignore", why, command_id)
        return Verdict("refuse", why, command_id)
    assert command_id is not None  # a verified payload has a string id (checked in _verify)
    for old in [i for i, (expires, _) in state.seen.items() if expires < now_ms]:
        del state.seen[old]
    if command_id in state.seen:  # 2: a retry of what was accepted
        return Verdict("duplicate", "already accepted", command_id, payload, state.seen[command_id][1])
    if command_id == state.last_id:  # the last one, after a reboot emptied the memory
        return Verdict("duplicate", "already accepted (before a restart)", command_id, payload, None)
    issued, expires = payload["issued_at"], payload["expires_at"]
    if now_ms > expires:  # 3
        return Verdict("refuse", f"expired {now_ms - expires} ms ago", command_id)
    if issued > now_ms + max_skew_ms:
        return Verdict("refuse", "issued in the future (clock skew)", command_id)
    if state.last_issued_at is not None and issued <= state.last_issued_at:  # 4
        return Verdict(
            "refuse",
            f"replayed or stale: issued_at {issued} is not after the last accepted command's {state.last_issued_at}",
            command_id,
        )
    if state.persist is not None:
        try:
            state.persist(issued, command_id)
        except OSError as exc:
            return Verdict("refuse", f"cannot persist the command counter: {exc}", command_id)
    state.last_issued_at, state.last_id = issued, command_id
    if len(state.seen) >= SEEN_MAX:
        state.seen.pop(next(iter(state.seen)))
    state.seen[command_id] = (expires, None)
    return Verdict("accept", "", command_id, payload)


def _verify(payload: object, key: bytes) -> str | None:
    """Shape and signature (step 1 of the contract)."""
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
    if not isinstance(payload["id"], str) or not payload["id"]:
        return "bad id"
    if not all(isinstance(payload[t], int) and not isinstance(payload[t], bool) for t in ("issued_at", "expires_at")):
        return "issued_at and expires_at must be epoch milliseconds"
    if not isinstance(payload["action"], str) or not isinstance(payload["params"], dict):
        return "bad action or params"
    return None


class FileCommandCounter:
    """A persistence hook for ``DeviceCommandState``: the last accepted ``issued_at`` and id in a small file,
    replaced atomically (write, fsync, rename), so a replay stays refused after a reboot."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> tuple[int | None, str | None]:
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            saved = orjson.loads(self.path.read_bytes())
            return int(saved["issued_at"]), str(saved["id"])
        return None, None

    def save(self, issued_at: int, command_id: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps({"issued_at": issued_at, "id": command_id}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def state(self) -> DeviceCommandState:
        """A device state loaded from the file, saving to it."""
        issued, command_id = self.load()
        return DeviceCommandState(last_issued_at=issued, last_id=command_id, persist=self.save)
