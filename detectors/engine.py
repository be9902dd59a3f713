"""The rule engine: one detector and one trigger per (rule, subject), fed in memory, findings on change only.

The hot path is ``evaluate``: one dict lookup per reading, and work only for readings of points some rule
watches (most points of a plant are not bound to a rule). Point rules run on the device's timestamps; device
health (silence, offline, invalid values) and votes run on the engine's own clock, which follows the monotonic
clock so that a jump of the wall clock cannot fake or hide silence. ``tick`` scores those at least once a
second even when nothing arrives. Findings carry the rule revision, the previous severity and a finding id,
which the alarm record keeps (reading batch -> finding -> alarm event -> command).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.clock import Clock, SystemClock
from core.model import Finding, Reading, Severity, SubjectRef
from core.registry import PlantIndex
from detectors.base import Detector
from detectors.rules import Deviation, Flatline, Invalid, Limit, Offline, RateOfRise, Spike, Stale, Vote
from detectors.specs import (
    LEL_PPM,
    DeviationRule,
    Expr,
    FlatlineRule,
    GasRule,
    InvalidRule,
    LimitRule,
    OfflineRule,
    PointRow,
    RateRule,
    RuleSection,
    SpikeRule,
    StaleRule,
    VoteRule,
    _Rule,
    rows_from_index,
    selected,
    severity,
)
from detectors.trigger import Level, Trigger

_LOGGER = logging.getLogger(__name__)

#: A reading this much older than the last one of its point is a clock jump (restart the detector), not a
#: late duplicate (skipped: alarms describe the present; the reading itself is still stored).
CLOCK_JUMP = timedelta(seconds=60)
_OUT_OF_RANGE = "out_of_range"


@dataclass(eq=False, slots=True)
class Binding:
    """One rule watching one subject."""

    rule: _Rule
    subject: SubjectRef
    detector: Detector
    trigger: Trigger
    labels: tuple[str, ...]  # a label per trigger level, e.g. ("H 55", "HH 60")
    tag: str | None = None  # the point key a point rule reads; None for device and vote rules
    device_id: int = 0
    last_ts: datetime | None = None
    value: float | None = None
    votes: list[Binding] = field(default_factory=list)  # votes that read this binding's state
    leaves: list[Leaf] = field(default_factory=list)  # a vote's leaves

    @property
    def key(self) -> tuple[str, str]:
        return self.rule.id, self.subject.key


@dataclass(eq=False, slots=True)
class Leaf:
    """One leaf of a vote within its scope: rule bindings to count, or points to read."""

    expr: Expr
    members: list[Binding] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    divisors: list[int] = field(default_factory=list)  # with ``per``: the divisor point of each of ``points``


@dataclass(eq=False, slots=True)
class _Entry:
    """What one point feeds: point rules, votes reading its value, and its device's health rules."""

    device_id: int
    bindings: list[Binding] = field(default_factory=list)
    votes: list[Binding] = field(default_factory=list)
    health: bool = False


class Engine:
    """Build bindings from a rule section and a plant index; evaluate batches; tick on the clock."""

    def __init__(
        self,
        rules: RuleSection,
        index: PlantIndex,
        *,
        clock: Clock | None = None,
        revision: int = 0,
        tick_s: float = 1.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.revision = revision
        self.tick_s = tick_s
        self._anchor = (self.clock.now(), self.clock.monotonic())
        self._next_tick = self.clock.monotonic() + tick_s
        self._entries: dict[int, _Entry] = {}
        self._health: dict[int, list[Binding]] = defaultdict(list)  # device id -> health bindings
        self._devices = {(d.site, d.code): d.id for d in index.devices.values()}
        self._votes: list[Binding] = []
        self._latest: dict[int, tuple[float | None, datetime]] = {}
        self.bindings: dict[tuple[str, str], Binding] = {}
        rows = rows_from_index(index)
        self._points = {(r.device_id, r.key): r.point_id for r in rows}
        by_rule: dict[str, list[Binding]] = defaultdict(list)
        for rule in rules.rules:
            if rule.enabled and not isinstance(rule, VoteRule):
                for binding in self._build(rule, selected(rule.select, rows)):
                    self._add(binding)
                    by_rule[rule.id].append(binding)
        for rule in rules.rules:
            if rule.enabled and isinstance(rule, VoteRule):
                self._build_votes(rule, selected(rule.select, rows), by_rule)
        self._seed_health()

    def now(self) -> datetime:
        """The engine's clock: the wall time at start plus monotonic time since (immune to wall-clock jumps)."""
        wall, mono = self._anchor
        return wall + timedelta(seconds=self.clock.monotonic() - mono)

    @property
    def bound_points(self) -> int:
        return len(self._entries)

    # --- building -----------------------------------------------------------------------------------------

    @staticmethod
    def _trigger(rule: _Rule, levels: list[Level], deadband: float = 0.0) -> Trigger:
        return Trigger(
            levels=levels,
            deadband=deadband,
            on_delay=timedelta(seconds=rule.on_delay_s),
            off_delay=timedelta(seconds=rule.off_delay_s),
        )

    def _build(self, rule: _Rule, rows: list[PointRow]) -> Iterable[Binding]:
        if rule.per == "device":
            for row in {r.device_id: r for r in rows}.values():
                yield Binding(
                    rule,
                    SubjectRef(row.site, row.area, row.device),
                    _health_detector(rule, row),
                    self._trigger(rule, [Level(1.0, severity(rule.severity))]),  # type: ignore[attr-defined]
                    (rule.type,),
                    device_id=row.device_id,
                )
            return
        for row in rows:
            detector, levels, labels, deadband = _point_detector(rule, row)
            yield Binding(
                rule,
                SubjectRef(row.site, row.area, row.device, row.key),
                detector,
                self._trigger(rule, levels, deadband),
                labels,
                tag=row.key,
                device_id=row.device_id,
            )

    def _build_votes(self, rule: VoteRule, chosen: list[PointRow], by_rule: dict[str, list[Binding]]) -> None:
        scopes: dict[tuple[str, ...], list[PointRow]] = defaultdict(list)
        for row in chosen:
            scopes[(row.site, row.area) if rule.per == "area" else (row.site, row.area, row.device)].append(row)
        for scope, members in scopes.items():
            vote = Binding(
                rule,
                SubjectRef(*scope),
                Vote(expr=rule.expr),
                self._trigger(rule, [Level(1.0, severity(rule.severity))]),
                ("vote",),
            )
            for expr in rule.expr.leaves():
                leaf = Leaf(expr)
                if expr.rule is not None:
                    leaf.members = [
                        b
                        for b in by_rule.get(expr.rule, [])
                        if (b.subject.site, b.subject.area, b.subject.device)[: len(scope)] == scope
                    ]
                    for member in leaf.members:
                        member.votes.append(vote)
                else:
                    for row in members:
                        if row.key == expr.key and expr.device_kind in (None, row.device_kind):
                            divisor = self._points.get((row.device_id, expr.per)) if expr.per else None
                            if expr.per is not None and divisor is None:
                                continue  # a ratio needs both points on the device
                            leaf.points.append(row.point_id)
                            self._entry(row.point_id, row.device_id).votes.append(vote)
                            if divisor is not None:
                                leaf.divisors.append(divisor)
                                self._entry(divisor, row.device_id).votes.append(vote)
                vote.leaves.append(leaf)
            self._votes.append(vote)
            self.bindings[vote.key] = vote

    def _entry(self, point_id: int, device_id: int) -> _Entry:
        entry = self._entries.get(point_id)
        if entry is None:
            entry = self._entries[point_id] = _Entry(device_id)
        return entry

    def _add(self, binding: Binding) -> None:
        self.bindings[binding.key] = binding
        if binding.tag is None:
            self._health[binding.device_id].append(binding)
        else:
            self._entry(self._points[(binding.device_id, binding.tag)], binding.device_id).bindings.append(binding)

    def _seed_health(self) -> None:
        """Every point of a device with health rules marks the device as heard; silence counts from now."""
        start = self.now()
        for (device_id, _key), point_id in self._points.items():
            if device_id in self._health:
                self._entry(point_id, device_id).health = True
        for bindings in self._health.values():
            for binding in bindings:
                binding.detector.learn_one({"seen": 1.0}, start)

    # --- evaluation -----------------------------------------------------------------------------------------

    def evaluate(
        self,
        rows: Sequence[Reading],
        *,
        rejects: Sequence[Any] = (),
        statuses: Sequence[Any] = (),
        batch_id: str | None = None,
    ) -> list[Finding]:
        """Feed a decoded batch (rows ``(time, point_id, value, quality)``, rejects, status changes)."""
        out: list[Finding] = []
        entries = self._entries
        now = self.now()
        heard: Counter[int] = Counter()  # device id -> invalid samples (a key means "heard")
        dirty: dict[int, Binding] = {}  # votes to re-evaluate
        for row in rows if entries else ():
            entry = entries.get(row[1])
            if entry is None:
                continue
            ts, point_id, value = row[0], row[1], row[2]
            if entry.health:
                heard[entry.device_id] += value is None
            if entry.votes:
                self._latest[point_id] = (value, now)
                dirty.update((id(v), v) for v in entry.votes)
            for binding in entry.bindings:
                self._feed_point(binding, ts, value, out, dirty, batch_id)
        for reject in rejects:
            device_id = self._devices.get((reject.site, reject.device))
            if device_id in self._health:
                heard[device_id] += getattr(reject.reason, "value", reject.reason) == _OUT_OF_RANGE
        for device_id, invalid in heard.items():
            self._feed_health(
                device_id, {"seen": 1.0, "online": 1.0, "invalid": float(invalid)}, now, out, dirty, batch_id
            )
        for change in statuses:
            if change.device_id in self._health:
                self._feed_health(
                    change.device_id, {"online": 1.0 if change.status == "online" else 0.0}, now, out, dirty, batch_id
                )
        for vote in dirty.values():
            self._feed_vote(vote, now, out, batch_id)
        if self.clock.monotonic() >= self._next_tick:
            out += self.tick(batch_id=batch_id)
        return out

    def tick(self, *, batch_id: str | None = None) -> list[Finding]:
        """Score the clock-driven rules (silence, offline, invalid counts, votes) at the engine's time."""
        self._next_tick = self.clock.monotonic() + self.tick_s
        now = self.now()
        out: list[Finding] = []
        for bindings in self._health.values():
            for binding in bindings:
                self._step(binding, {}, now, out, {}, batch_id)
        for vote in self._votes:  # after health, so that votes see this tick's states
            self._feed_vote(vote, now, out, batch_id)
        return out

    def _feed_point(
        self,
        b: Binding,
        ts: datetime,
        value: float | None,
        out: list[Finding],
        dirty: dict[int, Binding],
        batch_id: str | None,
    ) -> None:
        if b.last_ts is not None and ts <= b.last_ts:
            if b.last_ts - ts <= CLOCK_JUMP:
                return  # late or repeated: stored, but not judged
            _LOGGER.warning(
                "clock of %s jumped back by %s; restarting rule %s", b.subject.key, b.last_ts - ts, b.rule.id
            )
            b.detector = type(b.detector)(**b.detector.get_params())
        b.last_ts = ts
        b.value = value
        self._step(b, {b.tag: value} if b.tag else {}, ts, out, dirty, batch_id)

    def _feed_health(
        self,
        device_id: int,
        x: dict[str, float],
        now: datetime,
        out: list[Finding],
        dirty: dict[int, Binding],
        batch_id: str | None,
    ) -> None:
        for binding in self._health[device_id]:
            self._step(binding, x, now, out, dirty, batch_id)

    def _feed_vote(self, vote: Binding, now: datetime, out: list[Finding], batch_id: str | None) -> None:
        x: dict[str, float | None] = {}
        max_age = timedelta(seconds=vote.rule.max_age_s)  # type: ignore[attr-defined]
        for i, leaf in enumerate(vote.leaves):
            if leaf.members:
                floor = severity(leaf.expr.min_severity)
                x[f"leaf{i}"] = float(sum(1 for m in leaf.members if m.trigger.state_ >= floor))
                continue
            fresh = [
                v
                for pid in leaf.points
                if (got := self._latest.get(pid)) and now - got[1] <= max_age and (v := got[0]) is not None
            ]
            if leaf.divisors:
                fresh = self._ratios(leaf, now, max_age)
            if not fresh:
                x[f"leaf{i}"] = None
            elif leaf.expr.above is not None:
                x[f"leaf{i}"] = float(sum(1 for v in fresh if v >= leaf.expr.above))
            else:
                x[f"leaf{i}"] = float(sum(1 for v in fresh if v <= leaf.expr.below))  # type: ignore[operator]
        self._step(vote, x, now, out, {}, batch_id)

    def _ratios(self, leaf: Leaf, now: datetime, max_age: timedelta) -> list[float]:
        """Each point of a ``per`` leaf divided by its divisor, where both are fresh and the divisor positive."""
        out = []
        for pid, did in zip(leaf.points, leaf.divisors, strict=True):
            top, bottom = self._latest.get(pid), self._latest.get(did)
            if (
                top
                and bottom
                and top[0] is not None
                and bottom[0] is not None
                and bottom[0] > 0
                and now - top[1] <= max_age
                and now - bottom[1] <= max_age
            ):
                out.append(top[0] / bottom[0])
        return out

    def _step(
        self,
        b: Binding,
        x: dict[str, Any],
        ts: datetime,
        out: list[Finding],
        dirty: dict[int, Binding],
        batch_id: str | None,
    ) -> None:
        """Score, then learn (unless protected while abnormal), then classify; emit on change."""
        score = b.detector.score_one(x, ts)
        previous = b.trigger.state_
        if not (b.detector.protect and previous != Severity.NORMAL):
            b.detector.learn_one(x, ts)
        changed = b.trigger.update(score, ts)
        if changed is None:
            return
        out.append(self._finding(b, changed, previous, ts, score, batch_id))
        dirty.update((id(v), v) for v in b.votes)

    def _finding(
        self,
        b: Binding,
        new: Severity,
        previous: Severity,
        ts: datetime,
        score: float | None,
        batch_id: str | None,
        message: str | None = None,
    ) -> Finding:
        held = [label for level, label in zip(b.trigger.levels, b.labels, strict=False) if level.severity <= new]
        level = held[-1] if held and new > Severity.NORMAL else ""
        if message is None:
            what = f"{b.tag} = {b.value:g}" if b.tag and b.value is not None else (b.rule.name_en or b.rule.name)
            message = f"{what} ({level})" if level else f"{what}: back to normal"
        when = ts if b.tag else self.clock.now()  # device time for point rules, wall time otherwise
        return Finding(
            rule=b.rule.id,
            detector=b.detector.key,
            subject=b.subject,
            severity=new,
            ts=when,
            score=score,
            value=b.value if b.tag else None,
            message=message,
            caused_by=batch_id,
            details={
                "finding_id": uuid.uuid4().hex,
                "previous": int(previous),
                "level": level,
                "type": b.rule.type,
                "rule_revision": self.revision,
                "name": b.rule.name,
                "name_en": b.rule.name_en,
                "detector_version": b.detector.version,
            },
        )

    # --- state across restarts and configuration changes ----------------------------------------------------

    def active(self) -> dict[tuple[str, str], Severity]:
        """Every (rule, subject key) that is not normal, with its severity."""
        return {key: b.trigger.state_ for key, b in self.bindings.items() if b.trigger.state_ > Severity.NORMAL}

    def restore(self, states: Iterable[tuple]) -> int:
        """Take up severities of open alarms (after a restart) so that their return to normal is noticed.

        ``states`` are ``(rule, subject key, severity, ...)``. A device that was silent stays silent until it is
        heard: its silence is not counted afresh from the restart.
        """
        restored = 0
        for rule, subject_key, sev, *_ in states:
            binding = self.bindings.get((rule, subject_key))
            if binding is not None:
                binding.trigger.restore(sev)
                if isinstance(binding.detector, Stale) and sev > Severity.NORMAL:
                    binding.detector = Stale(**binding.detector.get_params())
                restored += 1
        return restored

    def history_needed(self) -> tuple[list[int], timedelta]:
        """The points whose detectors learn from history, and how far back (for ``warm_up``, at most an hour)."""
        points, span = set(), 0.0
        for point_id, entry in self._entries.items():
            for b in entry.bindings:
                if b.detector.warm:
                    points.add(point_id)
                    span = max(
                        [
                            span,
                            *(
                                float(v)
                                for k, v in b.detector.get_params().items()
                                if k in ("window_s", "within_s", "max_span_s") and v
                            ),
                        ]
                    )
        return sorted(points), timedelta(seconds=min(span, 3600.0))

    def warm_up(
        self, history: dict[int, list[tuple[datetime, float]]], until: dict[tuple[str, str], datetime] | None = None
    ) -> int:
        """Teach the stateful point detectors their recent readings (STYLE.md B4: baselines, runs, spreads).

        For a subject whose alarm was open at the restart, only readings before the alarm was raised are
        taught (``until``): a baseline must not learn the leak it is watching. Returns the bindings warmed.
        """
        until = until or {}
        warmed = 0
        for point_id, rows in history.items():
            entry = self._entries.get(point_id)
            if entry is None or not rows:
                continue
            for b in entry.bindings:
                if not b.detector.warm:
                    continue
                cutoff = until.get(b.key)
                for ts, value in rows:
                    if cutoff is not None and ts >= cutoff:
                        break
                    b.detector.learn_one({b.tag: value}, ts)
                b.last_ts = rows[-1][0]
                warmed += 1
        return warmed

    def adopt(self, old: Engine) -> list[Finding]:
        """Continue from ``old`` after a configuration change: keep what is unchanged, report what went away.

        A binding whose rule and subject are unchanged keeps its detector and trigger (history, pending
        delays); one whose rule changed keeps its severity; one that no longer exists returns to normal.
        """
        self._anchor = old._anchor
        self._latest = old._latest
        out: list[Finding] = []
        for key, before in old.bindings.items():
            now_binding = self.bindings.get(key)
            if now_binding is None:
                if before.trigger.state_ > Severity.NORMAL:
                    out.append(
                        self._finding(
                            before,
                            Severity.NORMAL,
                            before.trigger.state_,
                            old.now(),
                            None,
                            None,
                            message="rule removed or changed scope: closed by configuration",
                        )
                    )
                continue
            if now_binding.rule == before.rule and type(now_binding.detector) is type(before.detector):
                now_binding.detector, now_binding.trigger = before.detector, before.trigger
                now_binding.last_ts, now_binding.value = before.last_ts, before.value
            else:
                now_binding.trigger.restore(before.trigger.state_)
        return out


def _health_detector(rule: _Rule, row: PointRow) -> Detector:
    if isinstance(rule, StaleRule):
        return Stale(limit_s=max(rule.intervals * row.interval_s, rule.min_silence_s))
    if isinstance(rule, OfflineRule):
        return Offline()
    if isinstance(rule, InvalidRule):
        return Invalid(count=rule.count, within_s=rule.within_s)
    raise ValueError(f"rule type {rule.type} is not a device rule")


def _levels(specs: Sequence[Any], score_of) -> list[Level]:
    return [
        Level(score_of(s.at), severity(s.severity), None if s.on_delay_s is None else timedelta(seconds=s.on_delay_s))
        for s in specs
    ]


def _limit(rule: LimitRule | GasRule, row: PointRow) -> tuple[Detector, list[Level], tuple[str, ...], float]:
    """A limit or gas rule as a ``Limit`` in the unit of the point (gas levels converted between ppm and %LEL)."""
    side = "high" if isinstance(rule, GasRule) or rule.high else "low"
    specs = rule.levels if isinstance(rule, GasRule) else (rule.high or rule.low)

    def convert(value: float) -> float:
        if not isinstance(rule, GasRule):
            return value
        ppm = rule.ppm(value)
        return ppm if row.unit == "ppm" else ppm * 100.0 / LEL_PPM[rule.gas]

    first = convert(specs[0].at)
    det = Limit(tag=row.key, limit=first, side=side, scale=max(abs(first), 1.0))
    names = ("H", "HH", "HHH") if side == "high" else ("L", "LL", "LLL")
    labels = tuple(f"{names[min(i, 2)]} {convert(s.at):g}" for i, s in enumerate(specs))
    deadband = convert(rule.deadband) if isinstance(rule, GasRule) else rule.deadband
    return det, _levels(specs, lambda at: det.score_of(convert(at))), labels, deadband / det.scale


def _point_detector(rule: _Rule, row: PointRow) -> tuple[Detector, list[Level], tuple[str, ...], float]:
    """Detector, trigger levels (in score units), level labels and deadband (score units) of a point rule."""
    if isinstance(rule, LimitRule | GasRule):
        return _limit(rule, row)
    if isinstance(rule, RateRule | DeviationRule):
        first = rule.levels[0].at
        if isinstance(rule, RateRule):
            det: Detector = RateOfRise(
                tag=row.key,
                window_s=rule.window_s,
                per_s=first,
                direction=rule.direction,
                max_span_s=max(4 * rule.window_s, 2.5 * row.interval_s),
            )
            unit = "/s"
        else:
            det = Deviation(
                tag=row.key,
                window_s=rule.window_s,
                level=first,
                direction=rule.direction,
                relative=rule.relative,
                min_samples=rule.min_samples,
            )
            unit = "%" if rule.relative else ""
        sign = "-" if rule.direction == "fall" else "+"
        labels = tuple(f"{sign}{s.at:g}{unit}" for s in rule.levels)
        return det, _levels(rule.levels, lambda at: at / first), labels, rule.deadband / first
    one = [Level(1.0, severity(rule.severity))]  # type: ignore[attr-defined]
    if isinstance(rule, FlatlineRule):
        return (
            Flatline(tag=row.key, window_s=rule.window_s, tolerance=rule.tolerance, min_samples=rule.min_samples),
            one,
            (f"unchanged {rule.window_s:g} s",),
            0.0,
        )
    if isinstance(rule, SpikeRule):
        return (
            Spike(
                tag=row.key,
                z=rule.z,
                samples=rule.samples,
                count=rule.count,
                within_s=rule.within_s,
                min_scale=rule.min_scale,
            ),
            one,
            (f"{rule.count} spikes",),
            0.0,
        )
    raise ValueError(f"rule type {rule.type} is not a point rule")
