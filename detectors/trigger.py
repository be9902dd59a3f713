"""Turn a stream of scores into an edge-triggered severity with hysteresis and delays (STYLE.md B4).

The same trigger serves rules and ML detectors, so flapping is solved once:

* a level is entered when the score reaches its threshold and stays there for its on-delay
  (ISA-18.2 on-delay; OPC UA ``OnDelay``); each level may have its own (GB 38031: 1 degC/s must persist 3 s,
  the slower 0.2 degC/s precursor 10 s), and each level keeps its own timer, so a score that climbs through a
  lower level into a higher one does not restart the lower level's delay;
* a level is left when the score falls below its threshold, and with a deadband to ``threshold - deadband``
  or below, and stays there for ``off_delay`` (alarm deadband and off-delay; OPC UA ``AlarmDeadband`` /
  ``OffDelay``, standards.md section 1.4);
* a ``None`` score (no judgement possible) changes nothing: silence is detected by its own detector;
* a timestamp that goes backwards (clock jump) restarts pending delays instead of firing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.model import Severity

#: Scores within this of a threshold count as on it: limits are converted from engineering units, and
#: 6.0 - 5.7 is not 0.3 in binary floating point; an edge given in the configuration must behave as written.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Level:
    threshold: float
    severity: Severity
    #: This level's own on-delay; None uses the trigger's.
    on_delay: timedelta | None = None


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
        self._held = [False] * len(self.levels)
        # per level: since when the score has been at/above it (entering) or released below it (leaving)
        self._above_since: list[datetime | None] = [None] * len(self.levels)
        self._below_since: list[datetime | None] = [None] * len(self.levels)
        self._last_ts: datetime | None = None

    def update(self, score: float | None, ts: datetime) -> Severity | None:
        """Feed one score; return the new severity if the classified state changed, else None."""
        if self._last_ts is not None and ts < self._last_ts:
            self._restart_timers(ts)
        self._last_ts = ts
        if score is None:
            return None
        for i, level in enumerate(self.levels):
            if self._held[i]:
                self._above_since[i] = None
                if score >= level.threshold - _EPS or score > level.threshold - self.deadband + _EPS:
                    self._below_since[i] = None
                    continue
                if self._below_since[i] is None:
                    self._below_since[i] = ts
                if ts - self._below_since[i] >= self.off_delay:
                    self._held[i], self._below_since[i] = False, None
            else:
                self._below_since[i] = None
                if score < level.threshold - _EPS:
                    self._above_since[i] = None
                    continue
                if self._above_since[i] is None:
                    self._above_since[i] = ts
                delay = self.on_delay if level.on_delay is None else level.on_delay
                if ts - self._above_since[i] >= delay:
                    self._held[i], self._above_since[i] = True, None
        state = max(
            (lv.severity for lv, held in zip(self.levels, self._held, strict=True) if held), default=Severity.NORMAL
        )
        if state == self.state_:
            return None
        self.state_ = state
        return state

    def _restart_timers(self, ts: datetime) -> None:
        self._above_since = [None if since is None else ts for since in self._above_since]
        self._below_since = [None if since is None else ts for since in self._below_since]

    def restore(self, severity: Severity) -> None:
        """Take up a severity known from elsewhere (open alarms after a restart) without emitting it."""
        self._held = [lv.severity <= severity and severity > Severity.NORMAL for lv in self.levels]
        self._above_since = [None] * len(self.levels)
        self._below_since = [None] * len(self.levels)
        self.state_ = max(
            (lv.severity for lv, h in zip(self.levels, self._held, strict=True) if h), default=Severity.NORMAL
        )

    def reset(self) -> None:
        """Return to normal without emitting (after a restart with no knowledge of the state)."""
        self.restore(Severity.NORMAL)
        self._last_ts = None
