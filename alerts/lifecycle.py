"""The ISA-18.2 alarm state machine as a pure table: ``(state, event) -> (new state, actions)``.

Transitions are those of standards.md section 1.2 (Alerta's ISA 18.2 model, yamcs' latched states):
A -> B occurs; B -> C acknowledged; C -> A returns to normal; B -> D returns before acknowledgement; D -> A
acknowledged; D -> B re-occurs; C -> B re-alarm on a higher severity; any state -> E (shelve); E -> A or B on
unshelve; F and G return to A or B by the condition; a latching alarm goes to a latched state on return to
normal and stays there until an operator resets it. Every pair not in ``TABLE`` is listed in ``ILLEGAL``, and
``next_state`` raises ``IllegalTransition`` for it: nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from itertools import product

from alerts.models import Action, AlarmState, Event, IllegalTransition

S, E, A = AlarmState, Event, Action


class Choice(Enum):
    """A target that depends on the alarm's condition or configuration, not only its state."""

    BY_CONDITION = "normal if the condition is normal, else active unacknowledged"
    CLEAR_FROM_UNACKED = "returned-to-normal unacknowledged, or latched unacknowledged for a latching alarm"
    CLEAR_FROM_ACKED = "normal, or latched acknowledged for a latching alarm"


@dataclass(frozen=True, slots=True)
class Transition:
    target: AlarmState | Choice
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    state: AlarmState
    actions: tuple[Action, ...]


_RETURN = Transition(Choice.BY_CONDITION, (A.ANNUNCIATE, A.CHECK_SUPPRESSION))
_STAY_HIDDEN = (E.RAISE, E.CLEAR, E.SEVERITY_UP, E.SEVERITY_DOWN)  # evaluated, recorded, not annunciated


def _hiding_moves() -> dict[Event, Transition]:
    """Shelving, design suppression and removal from service are possible from every state (standards.md 1.2)."""
    return {
        E.SHELVE: Transition(S.SHELVED),
        E.SUPPRESS: Transition(S.SUPPRESSED),
        E.REMOVE_FROM_SERVICE: Transition(S.OUT_OF_SERVICE),
    }


TABLE: dict[tuple[AlarmState, Event], Transition] = {
    **{(S.NORMAL, e): t for e, t in _hiding_moves().items()},
    (S.NORMAL, E.RAISE): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),
    **{(S.ACTIVE_UNACKED, e): t for e, t in _hiding_moves().items()},
    (S.ACTIVE_UNACKED, E.CLEAR): Transition(Choice.CLEAR_FROM_UNACKED),
    (S.ACTIVE_UNACKED, E.SEVERITY_UP): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),
    (S.ACTIVE_UNACKED, E.SEVERITY_DOWN): Transition(S.ACTIVE_UNACKED),
    (S.ACTIVE_UNACKED, E.ACK): Transition(S.ACTIVE_ACKED),
    (S.ACTIVE_UNACKED, E.ESCALATE): Transition(S.ACTIVE_UNACKED, (A.ESCALATE,)),
    **{(S.ACTIVE_ACKED, e): t for e, t in _hiding_moves().items()},
    (S.ACTIVE_ACKED, E.CLEAR): Transition(Choice.CLEAR_FROM_ACKED),
    (S.ACTIVE_ACKED, E.SEVERITY_UP): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),  # re-alarm
    (S.ACTIVE_ACKED, E.SEVERITY_DOWN): Transition(S.ACTIVE_ACKED),
    **{(S.CLEARED_UNACKED, e): t for e, t in _hiding_moves().items()},
    (S.CLEARED_UNACKED, E.RAISE): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),  # re-occurs
    (S.CLEARED_UNACKED, E.ACK): Transition(S.NORMAL),
    (S.CLEARED_UNACKED, E.ESCALATE): Transition(S.CLEARED_UNACKED, (A.ESCALATE,)),
    **{(S.LATCHED_UNACKED, e): t for e, t in _hiding_moves().items()},
    (S.LATCHED_UNACKED, E.RAISE): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),
    (S.LATCHED_UNACKED, E.ACK): Transition(S.LATCHED_ACKED),
    (S.LATCHED_UNACKED, E.ESCALATE): Transition(S.LATCHED_UNACKED, (A.ESCALATE,)),
    **{(S.LATCHED_ACKED, e): t for e, t in _hiding_moves().items()},
    (S.LATCHED_ACKED, E.RAISE): Transition(S.ACTIVE_UNACKED, (A.ANNUNCIATE,)),
    (S.LATCHED_ACKED, E.RESET): Transition(S.NORMAL),
    **{(S.SHELVED, e): Transition(S.SHELVED) for e in _STAY_HIDDEN},
    (S.SHELVED, E.SHELVE): Transition(S.SHELVED),  # a new expiry and reason
    (S.SHELVED, E.UNSHELVE): _RETURN,
    (S.SHELVED, E.SUPPRESS): Transition(S.SHELVED),  # shelving stays; checked on unshelve
    (S.SHELVED, E.UNSUPPRESS): Transition(S.SHELVED),
    (S.SHELVED, E.REMOVE_FROM_SERVICE): Transition(S.OUT_OF_SERVICE),
    **{(S.SUPPRESSED, e): Transition(S.SUPPRESSED) for e in _STAY_HIDDEN},
    (S.SUPPRESSED, E.SUPPRESS): Transition(S.SUPPRESSED),  # another cause
    (S.SUPPRESSED, E.UNSUPPRESS): _RETURN,
    (S.SUPPRESSED, E.SHELVE): Transition(S.SHELVED),
    (S.SUPPRESSED, E.REMOVE_FROM_SERVICE): Transition(S.OUT_OF_SERVICE),
    **{(S.OUT_OF_SERVICE, e): Transition(S.OUT_OF_SERVICE) for e in _STAY_HIDDEN},
    (S.OUT_OF_SERVICE, E.SUPPRESS): Transition(S.OUT_OF_SERVICE),
    (S.OUT_OF_SERVICE, E.UNSUPPRESS): Transition(S.OUT_OF_SERVICE),
    (S.OUT_OF_SERVICE, E.RETURN_TO_SERVICE): _RETURN,
}

#: Every pair the table does not allow, named explicitly (acknowledging twice, resetting an alarm that is not
#: latched, shelving an alarm that is out of service, a clear with no active condition...).
ILLEGAL: frozenset[tuple[AlarmState, Event]] = frozenset(
    pair for pair in product(AlarmState, Event) if pair not in TABLE
)


def why_illegal(state: AlarmState, event: Event) -> str:
    """A plain reason for an illegal pair, for the operator who tried it."""
    hidden = state in (S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE)
    reasons = {
        E.RAISE: "the condition is already active",
        E.CLEAR: "the condition is not active",
        E.SEVERITY_UP: "the condition is not active",
        E.SEVERITY_DOWN: "the condition is not active",
        E.ACK: "it is not shown to operators" if hidden else "there is nothing to acknowledge",
        E.RESET: "acknowledge it first" if state is S.LATCHED_UNACKED else "only a latched alarm can be reset",
        E.SHELVE: "an alarm out of service cannot be shelved",
        E.UNSHELVE: "it is not shelved",
        E.UNSUPPRESS: "it is not suppressed",
        E.REMOVE_FROM_SERVICE: "it is already out of service",
        E.RETURN_TO_SERVICE: "it is not out of service",
        E.ESCALATE: "it does not wait for an acknowledgement",
        E.SUPPRESS: "it cannot be suppressed now",
    }
    return reasons[event]


def next_state(state: AlarmState, event: Event, *, condition_active: bool, latching: bool = False) -> Outcome:
    """The state after ``event`` and the actions it asks for; raise IllegalTransition for an illegal pair.

    ``condition_active`` is whether the process condition is abnormal *after* the event (for a raise: True).
    """
    transition = TABLE.get((state, event))
    if transition is None:
        raise IllegalTransition(state, event, why_illegal(state, event))
    target = transition.target
    if target is Choice.BY_CONDITION:
        target = S.ACTIVE_UNACKED if condition_active else S.NORMAL
    elif target is Choice.CLEAR_FROM_UNACKED:
        target = S.LATCHED_UNACKED if latching else S.CLEARED_UNACKED
    elif target is Choice.CLEAR_FROM_ACKED:
        target = S.LATCHED_ACKED if latching else S.NORMAL
    actions = transition.actions
    if target is not S.ACTIVE_UNACKED:
        actions = tuple(a for a in actions if a is not A.ANNUNCIATE)  # returning to normal announces nothing
    return Outcome(target, actions)
