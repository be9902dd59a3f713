"""Turn a stream of scores into an edge-triggered severity with hysteresis and delays (STYLE.md B4).

The same trigger serves rules and ML detectors, so flapping is solved once:

* a level is entered when the score reaches its threshold and stays there for ``on_delay``
  (ISA-18.2 on-delay; OPC UA ``OnDelay``);
* a level is left when the score falls below ``threshold - deadband`` and stays there for ``off_delay``
  (alarm deadband and off-delay; OPC UA ``AlarmDeadband``/``OffDelay``, standards.md section 1.4);
* a ``None`` score (no judgement possible) changes nothing: silence is detected by its own detector;
* a timestamp that goes backwards (clock jump) restarts pending delays instead of firing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.model import Severity


@dataclass(frozen=True, slots=True)
class Level:
    threshold: float
    severity: Severity


class Trigger:
    """Classify scores into severities; ``update`` returns the new severity only when it changes."""

    def __init__(
        self,
        *,
        levels: Sequence[Level] = (Level(1.0, Severity.HIGH),),
        deadband: float = 0.0,
        on_delay: timedelta = timedelta(0),
        off_delay: timedelta = timedelta(0),
    ) -> None:
        if not levels:
            raise ValueError("a trigger needs at least one level")
        self.levels = tuple(sorted(levels, key=lambda level: level.threshold))
        self.deadband = deadband
        self.on_delay = on_delay
        self.off_delay = off_delay
        self.state_ = Severity.NORMAL
        self._pending: Severity | None = None
        self._pending_since: datetime | None = None
        self._last_ts: datetime | None = None

    def _target(self, score: float) -> Severity:
        """The severity this score asks for, with the deadband applied to levels already held."""
        target = Severity.NORMAL
        for level in self.levels:
            held = self.state_ >= level.severity
            if score >= level.threshold or (held and score > level.threshold - self.deadband):
                target = max(target, level.severity)
        return target

    def update(self, score: float | None, ts: datetime) -> Severity | None:
        """Feed one score; return the new severity if the classified state changed, else None."""
        if self._last_ts is not None and ts < self._last_ts:
            self._pending, self._pending_since = None, None
        self._last_ts = ts
        if score is None:
            return None
        target = self._target(score)
        if target == self.state_:
            self._pending, self._pending_since = None, None
            return None
        delay = self.on_delay if target > self.state_ else self.off_delay
        if self._pending != target:
            self._pending, self._pending_since = target, ts
        assert self._pending_since is not None
        if ts - self._pending_since < delay:
            return None
        self.state_ = target
        self._pending, self._pending_since = None, None
        return target

    def reset(self) -> None:
        """Return to normal without emitting (after a restart with no knowledge of the state)."""
        self.state_ = Severity.NORMAL
        self._pending = self._pending_since = self._last_ts = None
