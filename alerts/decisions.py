"""Typed records of what the alarm engine decides about interlocks: ``CommandStatus`` and ``InterlockCommand``.

Pure (no database): alerts.plans makes commands, the ingest stage sends them and notes them on the finding
(``core.model.Decision``, as mappings: the JSON of spool files), the command machine (alerts.commands) stores
them. A decided command is ``pending`` in memory as in SQL (batches spooled by earlier versions say ``new``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class CommandStatus(StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    ACCEPTED = "accepted"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @classmethod
    def open_statuses(cls) -> frozenset[CommandStatus]:
        return frozenset({cls.PENDING, cls.ISSUED, cls.ACCEPTED})

    @classmethod
    def final_statuses(cls) -> frozenset[CommandStatus]:
        return frozenset(cls) - cls.open_statuses()

    @property
    def final(self) -> bool:
        return self not in CommandStatus.open_statuses()

    @property
    def is_open(self) -> bool:
        return self in CommandStatus.open_statuses()

    @classmethod
    def decided(cls, value: str) -> CommandStatus:
        """The status of a decided command as stored; ``new`` is the name batches spooled by earlier versions
        use for ``pending``."""
        return cls.PENDING if value == "new" else cls(value)


@dataclass(slots=True)
class InterlockCommand:
    """One interlock command decided for an actuator (mutable: the ingest stage notes that it sent it)."""

    id: str
    site: str
    device: str
    action: str
    accept_within_s: float
    done_within_s: float
    area: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    status: CommandStatus = CommandStatus.PENDING
    detail: str = ""
    retries: int = 2
    plan: str | None = None
    plan_level: int | None = None
    drill: bool = False
    payload: dict[str, Any] | None = None  # the signed command, once published
    issued_at: str | None = None  # ISO time it was published (by the ingest stage)

    @classmethod
    def of(cls, data: InterlockCommand | Mapping[str, Any]) -> InterlockCommand:
        """A command from its record (a spooled batch, a drill's finding, a manual request)."""
        if isinstance(data, InterlockCommand):
            return data
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names and v is not None or k in ("id", "site", "device")}
        values["status"] = CommandStatus.decided(str(data.get("status", "pending")))
        issued = values.get("issued_at")
        if issued is not None and not isinstance(issued, str):
            values["issued_at"] = issued.isoformat()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The record as a mapping (the JSON of spool files; ``payload``/``issued_at`` only once sent)."""
        out = asdict(self)
        out["status"] = self.status.value
        for key in ("payload", "issued_at"):
            if out[key] is None:
                del out[key]
        return out
