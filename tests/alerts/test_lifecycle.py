"""The alarm state machine, exhaustively: every (state, event) pair, with the condition normal and abnormal, for
latching and non-latching alarms, against an expectation written out here from standards.md section 1.2."""

from __future__ import annotations

from itertools import product

import pytest

from alerts.lifecycle import ILLEGAL, TABLE, next_state
from alerts.models import Action, AlarmState, Event, IllegalTransition

# state            event                 target   ("a|b": a if the condition is normal, else b;
#                                                  "a/b": a for a non-latching alarm, b for a latching one)
EXPECTED_TEXT = """
normal           raise                 active_unacked         +
normal           shelve                shelved
normal           suppress              suppressed
normal           remove_from_service   out_of_service
active_unacked   clear                 cleared_unacked/latched_unacked
active_unacked   severity_up           active_unacked         +
active_unacked   severity_down         active_unacked
active_unacked   ack                   active_acked
active_unacked   escalate              active_unacked
active_unacked   shelve                shelved
active_unacked   suppress              suppressed
active_unacked   remove_from_service   out_of_service
active_acked     clear                 normal/latched_acked
active_acked     severity_up           active_unacked         +
active_acked     severity_down         active_acked
active_acked     shelve                shelved
active_acked     suppress              suppressed
active_acked     remove_from_service   out_of_service
cleared_unacked  raise                 active_unacked         +
cleared_unacked  ack                   normal
cleared_unacked  escalate              cleared_unacked
cleared_unacked  shelve                shelved
cleared_unacked  suppress              suppressed
cleared_unacked  remove_from_service   out_of_service
latched_unacked  raise                 active_unacked         +
latched_unacked  ack                   latched_acked
latched_unacked  escalate              latched_unacked
latched_unacked  shelve                shelved
latched_unacked  suppress              suppressed
latched_unacked  remove_from_service   out_of_service
latched_acked    raise                 active_unacked         +
latched_acked    reset                 normal
latched_acked    shelve                shelved
latched_acked    suppress              suppressed
latched_acked    remove_from_service   out_of_service
shelved          raise                 shelved
shelved          clear                 shelved
shelved          severity_up           shelved
shelved          severity_down         shelved
shelved          shelve                shelved
shelved          unshelve              normal|active_unacked  +
shelved          suppress              shelved
shelved          unsuppress            shelved
shelved          remove_from_service   out_of_service
suppressed       raise                 suppressed
suppressed       clear                 suppressed
suppressed       severity_up           suppressed
suppressed       severity_down         suppressed
suppressed       suppress              suppressed
suppressed       unsuppress            normal|active_unacked  +
suppressed       shelve                shelved
suppressed       remove_from_service   out_of_service
out_of_service   raise                 out_of_service
out_of_service   clear                 out_of_service
out_of_service   severity_up           out_of_service
out_of_service   severity_down         out_of_service
out_of_service   suppress              out_of_service
out_of_service   unsuppress            out_of_service
out_of_service   return_to_service     normal|active_unacked  +
"""
# "+": announced to operators (notification, response plan) when it lands in active_unacked


def _expected() -> dict[tuple[AlarmState, Event], tuple[str, bool]]:
    out = {}
    for line in EXPECTED_TEXT.strip().splitlines():
        parts = line.split()
        out[(AlarmState(parts[0]), Event(parts[1]))] = (parts[2], len(parts) > 3)
    return out


EXPECTED = _expected()


def _target(text: str, *, condition_active: bool, latching: bool) -> AlarmState:
    if "|" in text:
        return AlarmState(text.split("|")[condition_active])
    if "/" in text:
        return AlarmState(text.split("/")[latching])
    return AlarmState(text)


@pytest.mark.parametrize(("state", "event"), list(product(AlarmState, Event)), ids=lambda v: v.value)
def test_every_pair(state: AlarmState, event: Event) -> None:
    for condition_active, latching in product((False, True), repeat=2):
        if (state, event) not in EXPECTED:
            with pytest.raises(IllegalTransition) as info:
                next_state(state, event, condition_active=condition_active, latching=latching)
            assert ": " in str(info.value)  # the operator is told why
            continue
        text, announced = EXPECTED[(state, event)]
        outcome = next_state(state, event, condition_active=condition_active, latching=latching)
        assert outcome.state == _target(text, condition_active=condition_active, latching=latching)
        assert (Action.ANNUNCIATE in outcome.actions) == (announced and outcome.state is AlarmState.ACTIVE_UNACKED)
        assert (Action.ESCALATE in outcome.actions) == (event is Event.ESCALATE)


def test_the_table_and_the_illegal_set_cover_every_pair_once() -> None:
    pairs = set(product(AlarmState, Event))
    assert set(TABLE) | ILLEGAL == pairs and not set(TABLE) & ILLEGAL
    assert set(TABLE) == set(EXPECTED)


def test_isa_walk_through() -> None:
    """A -> B -> C -> A, B -> D -> B -> D -> A (standards.md 1.2), and a latching alarm that needs a reset."""
    s = AlarmState.NORMAL
    for event, want in [
        (Event.RAISE, "active_unacked"),
        (Event.ACK, "active_acked"),
        (Event.CLEAR, "normal"),
        (Event.RAISE, "active_unacked"),
        (Event.CLEAR, "cleared_unacked"),
        (Event.RAISE, "active_unacked"),
        (Event.CLEAR, "cleared_unacked"),
        (Event.ACK, "normal"),
    ]:
        s = next_state(s, event, condition_active=event is Event.RAISE).state
        assert s == want
    s = AlarmState.NORMAL
    for event, want in [
        (Event.RAISE, "active_unacked"),
        (Event.CLEAR, "latched_unacked"),
        (Event.ACK, "latched_acked"),
        (Event.RESET, "normal"),
    ]:
        s = next_state(s, event, condition_active=event is Event.RAISE, latching=True).state
        assert s == want


def test_state_behaviour() -> None:
    assert [s for s in AlarmState if s.needs_ack] == [
        AlarmState.ACTIVE_UNACKED,
        AlarmState.CLEARED_UNACKED,
        AlarmState.LATCHED_UNACKED,
    ]
    assert not AlarmState.SHELVED.annunciated and AlarmState.LATCHED_ACKED.annunciated
    assert AlarmState.CLEARED_UNACKED.code == "RTNUN" and AlarmState.SUPPRESSED.label == "设计抑制"
