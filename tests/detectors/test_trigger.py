"""The shared trigger: edges only, hysteresis by deadband, on/off delays, missing data, clock jumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model import Severity
from detectors.trigger import Level, Trigger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def feed(trigger: Trigger, scores: list[float | None], step_s: float = 1.0) -> list[Severity | None]:
    return [trigger.update(s, T0 + timedelta(seconds=i * step_s)) for i, s in enumerate(scores)]


def test_emits_only_on_change() -> None:
    out = feed(Trigger(), [0.5, 1.0, 1.2, 1.1, 0.5, 0.4])
    assert out == [None, Severity.HIGH, None, None, Severity.NORMAL, None]


def test_deadband_holds_the_level_until_the_score_is_clearly_back() -> None:
    trigger = Trigger(deadband=0.05)
    assert feed(trigger, [1.0, 0.97, 0.96, 0.951, 0.95]) == [Severity.HIGH, None, None, None, Severity.NORMAL]


def test_two_levels_with_escalation_and_step_down() -> None:
    trigger = Trigger(levels=(Level(1.0, Severity.MEDIUM), Level(1.5, Severity.CRITICAL)), deadband=0.1)
    assert feed(trigger, [1.1, 1.6, 1.45, 1.39, 0.95, 0.89]) == [
        Severity.MEDIUM,
        Severity.CRITICAL,
        None,
        Severity.MEDIUM,
        None,
        Severity.NORMAL,
    ]


def test_on_delay_requires_the_condition_to_persist() -> None:
    trigger = Trigger(on_delay=timedelta(seconds=3))
    assert feed(trigger, [1.2, 1.2, 0.5, 1.2, 1.2, 1.2, 1.2]) == [None] * 6 + [Severity.HIGH]


def test_off_delay_requires_the_return_to_persist() -> None:
    trigger = Trigger(off_delay=timedelta(seconds=2))
    assert feed(trigger, [1.2, 0.5, 1.2, 0.5, 0.5, 0.5]) == [Severity.HIGH, None, None, None, None, Severity.NORMAL]


def test_missing_scores_change_nothing() -> None:
    trigger = Trigger(on_delay=timedelta(seconds=2))
    assert feed(trigger, [1.2, None, None, 1.2]) == [None, None, None, Severity.HIGH]
    assert trigger.update(None, T0 + timedelta(seconds=10)) is None and trigger.state_ is Severity.HIGH


def test_a_clock_jump_backwards_restarts_the_delay() -> None:
    trigger = Trigger(on_delay=timedelta(seconds=5))
    trigger.update(1.2, T0)
    trigger.update(1.2, T0 + timedelta(seconds=4))
    assert trigger.update(1.2, T0 + timedelta(seconds=1)) is None  # jumped back: delay restarts here
    assert trigger.update(1.2, T0 + timedelta(seconds=5)) is None
    assert trigger.update(1.2, T0 + timedelta(seconds=6)) is Severity.HIGH
