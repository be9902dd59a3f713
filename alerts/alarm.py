"""The alarm read model, typed: one row of ``alarm`` with its state and priority as enums (issue 18, item 1).

``Alarm.from_row`` takes a ``SELECT * FROM alarm`` row (``dict_row``); ``to_dict`` gives back the dict the
alarm engine has always answered with: the row's columns in table order with plain values (the state a ``str``,
severity and priority ``int``), then the presented keys (``state_label``... ``priority_label``), then the
timeline (``events``, ``commands``, ``notifications``) when it was loaded. The API, the hub, notifications and
reports take that dict at their boundary. An ``Alarm`` also reads as that mapping (``alarm["site"]``), so code
that only reads keys keeps working while it moves to the attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from alerts.models import AlarmState, Priority
from core.model import Severity

#: Keys added to the row by the read model, in the order ``to_dict`` gives them.
PRESENTED = ("state_label", "state_label_en", "state_code", "needs_ack", "annunciated", "priority_label")
#: The timeline, present when it was loaded (``get_alarm(events=True)``).
TIMELINE = ("events", "commands", "notifications")


@dataclass(frozen=True, slots=True)
class Alarm(Mapping[str, Any]):
    """One alarm (a row of ``alarm``, columns in table order)."""

    id: int
    rule: str
    source: str  # subject key: site/area/device/point
    site: str
    area: str | None
    device: str | None
    point: str | None
    rule_type: str | None
    detector: str | None
    rule_revision: int | None
    title: str
    title_en: str | None
    state: AlarmState
    condition_active: bool
    severity: Severity  # now; NORMAL when the condition is gone
    priority: Priority  # highest this episode
    latching: bool
    alarm_class: str
    level: str | None
    value: float | None
    message: str
    raised_at: datetime | None
    last_raised_at: datetime | None
    cleared_at: datetime | None
    activations: int
    acked_at: datetime | None
    acked_by: str | None
    shelved_until: datetime | None
    shelved_by: str | None
    shelve_reason: str | None
    oos_by: str | None
    oos_reason: str | None
    oos_permit: str | None
    suppressed_by: int | None
    first_out: bool
    chattering: bool
    flood_id: int | None
    plan_level: int | None
    drill: bool
    first_finding_id: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    #: Columns of the row that this class does not name (a later migration), kept in their order.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The timeline, or None when it was not loaded (the keys are then absent from ``to_dict``).
    events: list[dict[str, Any]] | None = None
    commands: list[dict[str, Any]] | None = None
    notifications: list[dict[str, Any]] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alarm:
        """An alarm from a ``SELECT * FROM alarm`` row (or a ``to_dict`` of one: presented keys are recomputed)."""
        known = {k: row[k] for k in COLUMNS}
        known["state"] = AlarmState(known["state"])
        known["severity"] = Severity(known["severity"])
        known["priority"] = Priority(known["priority"])
        skip = {*COLUMNS, *PRESENTED, *TIMELINE}
        timeline = {k: row[k] for k in TIMELINE if k in row}
        return cls(**known, extra={k: v for k, v in row.items() if k not in skip}, **timeline)

    def with_timeline(
        self, events: list[dict[str, Any]], commands: list[dict[str, Any]], notifications: list[dict[str, Any]]
    ) -> Alarm:
        return replace(self, events=events, commands=commands, notifications=notifications)

    # --- presented -------------------------------------------------------------------------------------------

    @property
    def state_label(self) -> str:
        return self.state.label

    @property
    def state_label_en(self) -> str:
        return self.state.label_en

    @property
    def state_code(self) -> str:
        return self.state.code

    @property
    def needs_ack(self) -> bool:
        return self.state.needs_ack

    @property
    def annunciated(self) -> bool:
        return self.state.annunciated

    @property
    def priority_label(self) -> str:
        return self.priority.label

    # --- the dict shape --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The alarm as the engine has always answered it (plain values: JSON and API answers unchanged)."""
        out = {k: getattr(self, k) for k in COLUMNS}
        out["state"] = self.state.value
        out["severity"] = int(self.severity)
        out["priority"] = int(self.priority)
        out.update(self.extra)
        for k in PRESENTED:
            out[k] = getattr(self, k)
        for k in TIMELINE:
            value = getattr(self, k)
            if value is not None:
                out[k] = value
        return out

    def _keys(self) -> tuple[str, ...]:
        timeline = tuple(k for k in TIMELINE if getattr(self, k) is not None)
        return (*COLUMNS, *self.extra, *PRESENTED, *timeline)

    def __getitem__(self, key: str) -> Any:
        if key == "state":
            return self.state.value
        if key in ("severity", "priority"):
            return int(getattr(self, key))
        if key in _ATTRS or (key in TIMELINE and getattr(self, key) is not None):
            return getattr(self, key)
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


#: The columns of ``alarm`` in table order (core/migrations/0011_alarms.sql): the fields up to ``closed_at``.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Alarm))[: [f.name for f in fields(Alarm)].index("extra")]
_ATTRS = frozenset((*COLUMNS, *PRESENTED))
