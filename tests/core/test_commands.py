"""The device-side command contract (core.commands.check_command): signature first, only verified ids remembered,
replays and stale commands refused (also after a reboot), retries answered alike; and the published test vectors
match the code."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.commands import DeviceCommandState, FileCommandCounter, check_command, device_key, sign
from tests.core import command_vectors

VECTORS = json.loads(command_vectors.PATH.read_text(encoding="utf-8"))
KEY = device_key("s3cret", "cz01", "fan-01")
T = 1_767_225_600_000


def _cmd(command_id: str, issued: int, *, key: bytes = KEY, ttl_ms: int = 60_000, action: str = "valve.open") -> bytes:
    body = {
        "id": command_id,
        "action": action,
        "params": {},
        "issued_at": issued,
        "expires_at": issued + ttl_ms,
        "alarm_id": None,
        "drill": False,
    }
    return orjson.dumps({**body, "sig": sign(body, key)})


def test_vectors_keys_match_an_independent_hkdf() -> None:
    spec = VECTORS["hkdf"]
    for entry in VECTORS["keys"]:
        independent = HKDF(
            algorithm=hashes.SHA256(),
            length=spec["length"],
            salt=spec["salt_utf8"].encode(),
            info=entry["info_utf8"].encode(),
        ).derive(entry["secret_utf8"].encode())
        assert (
            independent.hex()
            == entry["key_hex"]
            == device_key(entry["secret_utf8"], entry["site"], entry["device"]).hex()
        )


def test_vectors_canonical_json_and_signatures() -> None:
    for entry in VECTORS["signatures"]:
        canonical = orjson.dumps(entry["payload"], option=orjson.OPT_SORT_KEYS).decode()
        assert canonical == entry["canonical_utf8"]
        mac = hmac.new(bytes.fromhex(entry["key_hex"]), canonical.encode(), hashlib.sha256).hexdigest()
        assert mac == entry["sig_hex"] == sign(entry["payload"], bytes.fromhex(entry["key_hex"]))


def test_vectors_sequence_reaches_every_expectation() -> None:
    sequence = VECTORS["sequence"]
    state = DeviceCommandState()
    outcomes = []
    for step in sequence["steps"]:
        verdict = check_command(
            step["payload"],
            bytes.fromhex(sequence["key_hex"]),
            state,
            now_ms=step["now_ms"],
            max_skew_ms=sequence["max_skew_ms"],
        )
        assert step["reason_contains"] in verdict.reason, step["note"]
        outcomes.append(verdict.outcome)
    assert outcomes == [step["expect"] for step in sequence["steps"]]
    assert {"accept", "duplicate", "refuse", "ignore"} <= set(outcomes)


def test_vectors_file_is_what_the_code_builds() -> None:
    assert command_vectors.build() == VECTORS


def test_forged_ids_are_not_remembered_so_junk_cannot_flush_or_plant() -> None:
    state = DeviceCommandState()
    real = _cmd("real-1", T)
    assert check_command(real, KEY, state, now_ms=T + 10).outcome == "accept"
    for i in range(5_000):  # junk meant to flush the memory of real ids
        junk = _cmd(f"junk-{i}", T + 20, key=b"x" * 32)
        assert check_command(junk, KEY, state, now_ms=T + 20).outcome == "refuse"
    assert list(state.seen) == ["real-1"]
    assert check_command(real, KEY, state, now_ms=T + 30).outcome == "duplicate"  # a retry, not a second action
    planted = _cmd("next", T + 40, key=b"y" * 32)
    assert check_command(planted, KEY, state, now_ms=T + 40).reason == "bad signature"
    assert check_command(_cmd("next", T + 50), KEY, state, now_ms=T + 60).outcome == "accept"


def test_a_captured_command_cannot_be_replayed_once_its_id_is_forgotten() -> None:
    state = DeviceCommandState()
    captured = _cmd("open-1", T, action="valve.open")
    assert check_command(captured, KEY, state, now_ms=T + 1).outcome == "accept"
    assert (
        check_command(_cmd("close-2", T + 1_000, action="valve.close"), KEY, state, now_ms=T + 1_001).outcome
        == "accept"
    )
    state.seen.clear()  # whatever made the device forget the ids
    replay = check_command(captured, KEY, state, now_ms=T + 2_000)
    assert replay.outcome == "refuse" and "replayed or stale" in replay.reason


def test_ids_are_remembered_only_until_they_expire() -> None:
    state = DeviceCommandState()
    check_command(_cmd("a", T, ttl_ms=1_000), KEY, state, now_ms=T)
    check_command(_cmd("b", T + 5_000), KEY, state, now_ms=T + 5_000)
    assert list(state.seen) == ["b"]
    late = check_command(_cmd("a", T, ttl_ms=1_000), KEY, state, now_ms=T + 6_000)
    assert late.outcome == "refuse" and "expired" in late.reason


def test_the_counter_survives_a_reboot_and_a_retry_of_the_last_command_stays_a_duplicate(tmp_path: Path) -> None:
    counter = FileCommandCounter(tmp_path / "cmd-counter.json")
    state = counter.state()
    assert (state.last_issued_at, state.last_id) == (None, None)
    first, second = _cmd("c1", T), _cmd("c2", T + 100)
    assert check_command(first, KEY, state, now_ms=T + 1).outcome == "accept"
    assert check_command(second, KEY, state, now_ms=T + 101).outcome == "accept"
    rebooted = FileCommandCounter(tmp_path / "cmd-counter.json").state()
    assert rebooted.seen == {} and (rebooted.last_issued_at, rebooted.last_id) == (T + 100, "c2")
    assert check_command(first, KEY, rebooted, now_ms=T + 200).outcome == "refuse"
    again = check_command(second, KEY, rebooted, now_ms=T + 200)
    assert again.outcome == "duplicate" and again.previous is None


def test_a_command_that_cannot_be_persisted_is_refused() -> None:
    def broken(_issued: int, _id: str) -> None:
        raise OSError("flash worn out")

    state = DeviceCommandState(persist=broken)
    verdict = check_command(_cmd("c1", T), KEY, state, now_ms=T)
    assert verdict.outcome == "refuse" and "flash worn out" in verdict.reason and state.seen == {}
