"""The alarm vocabulary: states with their behaviour, events, priorities, actors and permissions.

States follow ISA-18.2 / IEC 62682 as implemented by Alerta's ISA 18.2 model, with the latched states of yamcs
(standards.md section 1.2). The letters printed by ``code`` are Alerta's; the ISA-2016 lettering A..I is not
confirmed (standards.md section 8), so the UI should show ``label``/``label_en``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from core import errors
from core.model import Severity
from core.permissions import POLICY, Permission, Role, allowed

__all__ = [
    "ACTIONS",
    "PERMISSIONS",
    "Action",
    "Actor",
    "AlarmError",
    "AlarmState",
    "Event",
    "IllegalTransition",
    "NotFound",
    "PermissionDenied",
    "Priority",
    "Role",
]


class AlarmState(StrEnum):
    NORMAL = "normal"  # A  NORM
    ACTIVE_UNACKED = "active_unacked"  # B  UNACK
    ACTIVE_ACKED = "active_acked"  # C  ACKED
    CLEARED_UNACKED = "cleared_unacked"  # D  RTNUN: returned to normal before acknowledgement
    LATCHED_UNACKED = "latched_unacked"  # returned to normal, latched, not acknowledged
    LATCHED_ACKED = "latched_acked"  # returned to normal, latched, acknowledged: waits for reset
    SHELVED = "shelved"  # E  SHLVD: operator, time-limited, with a reason
    SUPPRESSED = "suppressed"  # F  DSUPR: by design, while a configured cause is active
    OUT_OF_SERVICE = "out_of_service"  # G  OOSRV: maintenance, with a permit or MOC reference

    @property
    def code(self) -> str:
        return _CODES[self]

    @property
    def is_open(self) -> bool:
        """Anything but normal: the alarm row stays open (one open alarm per rule and source)."""
        return self is not AlarmState.NORMAL

    @property
    def is_active(self) -> bool:
        """Annunciated with the condition present."""
        return self in (AlarmState.ACTIVE_UNACKED, AlarmState.ACTIVE_ACKED)

    @property
    def needs_ack(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACKED, AlarmState.CLEARED_UNACKED, AlarmState.LATCHED_UNACKED)

    @property
    def annunciated(self) -> bool:
        """Shown to operators (shelved, suppressed and out-of-service alarms are evaluated but not shown)."""
        return self not in (AlarmState.NORMAL, AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)

    @property
    def latched(self) -> bool:
        return self in (AlarmState.LATCHED_UNACKED, AlarmState.LATCHED_ACKED)

    @property
    def label(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]


_CODES = {
    AlarmState.NORMAL: "NORM",
    AlarmState.ACTIVE_UNACKED: "UNACK",
    AlarmState.ACTIVE_ACKED: "ACKED",
    AlarmState.CLEARED_UNACKED: "RTNUN",
    AlarmState.LATCHED_UNACKED: "LTCHU",
    AlarmState.LATCHED_ACKED: "LTCHA",
    AlarmState.SHELVED: "SHLVD",
    AlarmState.SUPPRESSED: "DSUPR",
    AlarmState.OUT_OF_SERVICE: "OOSRV",
}
_LABELS = {
    AlarmState.NORMAL: ("正常", "Normal"),
    AlarmState.ACTIVE_UNACKED: ("报警未确认", "Active, unacknowledged"),
    AlarmState.ACTIVE_ACKED: ("报警已确认", "Active, acknowledged"),
    AlarmState.CLEARED_UNACKED: ("已恢复未确认", "Returned to normal, unacknowledged"),
    AlarmState.LATCHED_UNACKED: ("锁存未确认", "Latched, unacknowledged"),
    AlarmState.LATCHED_ACKED: ("锁存待复位", "Latched, waiting for reset"),
    AlarmState.SHELVED: ("已搁置", "Shelved"),
    AlarmState.SUPPRESSED: ("设计抑制", "Suppressed by design"),
    AlarmState.OUT_OF_SERVICE: ("停用检修", "Out of service"),
}


class Event(StrEnum):
    """What can happen to an alarm: process events, operator actions, design logic."""

    RAISE = "raise"  # the condition became active
    CLEAR = "clear"  # the condition returned to normal
    SEVERITY_UP = "severity_up"  # more severe while active: re-alarm (standards.md 1.2, C -> B)
    SEVERITY_DOWN = "severity_down"  # less severe while still active
    ACK = "ack"
    RESET = "reset"  # of a latched alarm
    SHELVE = "shelve"
    UNSHELVE = "unshelve"  # by an operator, or when the shelving expires
    SUPPRESS = "suppress"  # a configured cause became active
    UNSUPPRESS = "unsuppress"  # no configured cause is active any more
    REMOVE_FROM_SERVICE = "remove_from_service"
    RETURN_TO_SERVICE = "return_to_service"
    ESCALATE = "escalate"  # unacknowledged past a deadline: notify the next tier


class Action(StrEnum):
    """Side effects of a transition beyond the event row and the change notification."""

    ANNUNCIATE = "annunciate"  # present to operators now: notification outbox, response plan
    ESCALATE = "escalate"  # notify the next escalation tier (the notifier's policies)
    CHECK_SUPPRESSION = "check_suppression"  # back in view: is a configured cause still active?


class Priority(IntEnum):
    """Four alarm priorities; the priority of an alarm is the severity of its worst level (core.model)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def of(cls, severity: Severity) -> Priority:
        return cls(max(int(severity), 1))

    @property
    def label(self) -> str:
        return {1: "低", 2: "中", 3: "高", 4: "紧急"}[int(self)]


#: The alarm engine's actions and the permission of the one table (``core.permissions``) each needs: the API, the
#: console and any future caller are checked against the same rows.
ACTIONS: dict[str, Permission] = {
    "ack": Permission.ALARMS_ACK,
    "comment": Permission.ALARMS_COMMENT,
    "reset": Permission.ALARMS_RESET,
    "shelve": Permission.ALARMS_SHELVE,
    "out_of_service": Permission.ALARMS_OUT_OF_SERVICE,
    "command": Permission.COMMANDS_ISSUE,
    "bypass_request": Permission.BYPASS_REQUEST,
    "bypass_approve": Permission.BYPASS_APPROVE,
    "drill": Permission.DRILLS_RUN,
}
#: Roles per action: a read-only view of ``core.permissions.POLICY`` kept for callers of the old name.
PERMISSIONS: dict[str, frozenset[Role]] = {action: POLICY[p] for action, p in ACTIONS.items()}


class AlarmError(errors.DomainError):
    """A request about an alarm that cannot be done (422; the subclasses below say 404, 403, 409)."""


class NotFound(AlarmError, errors.NotFound):
    pass


class PermissionDenied(AlarmError, errors.Forbidden):
    pass


class Conflict(AlarmError, errors.Conflict):
    """Not allowed in the current state of a bypass, a command..."""


class AlarmChanged(AlarmError, errors.Stale):
    """The alarm changed since the version the caller saw; ``alarm`` is the alarm as it is now (an
    ``alerts.alarm.Alarm``, which imports this module)."""

    def __init__(self, alarm_id: int, *, seen: int, current: int, alarm: Mapping[str, Any]) -> None:
        super().__init__(
            f"alarm {alarm_id} changed since you saw it (version {seen}, now {current})",
            seen=seen,
            current=current,
            extra={"code": "alarm_changed"},
        )
        self.alarm = alarm


class IllegalTransition(AlarmError, errors.Conflict):
    """The event is not allowed in the alarm's state (e.g. acknowledging an acknowledged alarm)."""

    def __init__(self, state: AlarmState, event: Event, why: str = "") -> None:
        self.state, self.event = state, event
        super().__init__(
            f"cannot {event.value.replace('_', ' ')} an alarm that is {state.label_en.lower()}"
            + (f": {why}" if why else ""),
            extra={"code": "illegal_transition"},
        )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something: a person with a role, or a service (``system:ingest``)."""

    name: str
    role: Role | str = Role.OPERATOR

    @classmethod
    def system(cls, service: str) -> Actor:
        return cls(f"system:{service}", "system")

    def require(self, permission: str | Permission) -> None:
        """Raise PermissionDenied unless this actor's role holds ``permission`` (an action name of ``ACTIONS``
        or a ``core.permissions.Permission``)."""
        needed = permission if isinstance(permission, Permission) else ACTIONS[permission]
        if not allowed(self.role, needed):
            roles = ", ".join(sorted(POLICY[needed]))
            raise PermissionDenied(
                f"{self.name} ({self.role}) may not {str(permission).replace('_', ' ')}; allowed roles: {roles}"
            )
