"""The command state machine is a table (issue 18, item 1): every status has a row, a device's acknowledgement
moves a command only forward, and the table says what the earlier rank rule said."""

from __future__ import annotations

from itertools import product

from alerts.commands import FINAL, MOVES, OPEN, WORKER_MOVES, CommandStatus, device_may
from alerts.decisions import InterlockCommand
from core.commands import ACK_STATUSES

#: The rule the table replaced (alerts/dispatch.py before issue 18): an acknowledgement moves a command when its
#: rank is higher, never from skipped or cancelled.
_RANK = {"pending": 0, "issued": 1, "accepted": 2, "timed_out": 3, "done": 4, "rejected": 4, "failed": 4}


def _old_rule(current: str, status: str) -> bool:
    return current not in ("skipped", "cancelled") and _RANK.get(status, 0) > _RANK.get(current, 0)


def test_every_status_has_a_row_and_open_and_final_split_them() -> None:
    assert set(MOVES) == set(CommandStatus)
    assert OPEN.isdisjoint(FINAL) and OPEN | FINAL == set(CommandStatus)
    assert all(not MOVES[s] for s in FINAL - {CommandStatus.TIMED_OUT})
    assert set(WORKER_MOVES) <= OPEN


def test_the_table_agrees_with_the_rank_rule_for_every_acknowledgement() -> None:
    """Device events carry an acknowledgement status (``apply_ack`` refuses others) or ``foreign_ack``."""
    for current, status in product([s.value for s in CommandStatus], [*ACK_STATUSES, "foreign_ack", "x"]):
        assert device_may(current, status) == _old_rule(current, status), (current, status)


def test_a_device_can_only_acknowledge() -> None:
    targets = set().union(*MOVES.values())
    assert {t.value for t in targets} == set(ACK_STATUSES)


def test_new_is_read_as_pending_for_spooled_batches() -> None:
    assert CommandStatus.decided("new") is CommandStatus.PENDING
    assert CommandStatus.decided("skipped") is CommandStatus.SKIPPED


def test_a_command_record_reads_back_as_it_was_written() -> None:
    spooled = {
        "id": "c1",
        "site": "s",
        "area": "a",
        "device": "fan-01",
        "action": "exhaust_fan.on",
        "params": {},
        "plan": "s/a",
        "plan_level": 2,
        "drill": False,
        "status": "new",
        "detail": "",
        "accept_within_s": 5,
        "done_within_s": 30,
        "retries": 2,
    }
    command = InterlockCommand.of(spooled)
    assert command.status is CommandStatus.PENDING  # written by an earlier version
    assert command.as_dict() == {**spooled, "status": "pending"}
    command.status, command.payload, command.issued_at = CommandStatus.ISSUED, {"id": "c1"}, "2026-01-01T00:00:00"
    assert InterlockCommand.of(command.as_dict()) == command
