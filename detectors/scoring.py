"""Streaming scoring of area models inside the ingest pipeline: micro-batches, no database on the hot path."""

# ``ScoringStage.evaluate`` runs in the pipeline's stage thread for every decoded batch: readings of bound
# points are averaged into their area's grid step (``GridAccumulator``, the online twin of
# ``features.align``); when a step closes (a later reading arrives, or the clock passes its end plus
# ``grace``) its feature vector (``OnlineFeatures``) is scored, the trigger classifies the score, and a
# change of severity becomes a finding naming the points that contributed most. Findings of *enabled*
# models go into ``batch.findings`` for the alarm engine; *shadow* models are scored and recorded but never
# put anything there.
#
# ``ScoringStage.record`` runs in the record thread inside the batch's transaction: it writes the scores and
# findings gathered since the last call and, at most every ``reload_s``, reloads the models when their modes
# changed (promotion, rollback). Scores and findings are telemetry of the models: if a transaction fails they
# are dropped, while an enabled model's findings still travel with the batch (and its spool file) to the
# alarm engine.

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd
import psycopg

from core.model import Finding, Reading, Severity, SubjectRef
from detectors import service
from detectors.adapters import ModelDetector
from detectors.artifacts import ArtifactStore
from detectors.features import FeatureSpec, OnlineFeatures, point_of
from detectors.trigger import Level, Trigger

_LOGGER = logging.getLogger(__name__)

#: Default classification of a model's score: the learnt limit is a medium finding, twice as far a high one.
DEFAULT_LEVELS = (Level(1.0, Severity.MEDIUM), Level(2.0, Severity.HIGH))


class DecodedLike(Protocol):
    """What the stage reads of a decoded batch (``ingest.decoders.Decoded``)."""

    rows: list[Reading]


class BatchLike(Protocol):
    """What the stage needs of an ingest batch (``ingest.pipeline.Batch``; detectors never import ingest)."""

    id: str
    decoded: DecodedLike
    findings: list[Any]


class GridAccumulator:
    """Average an area's readings per grid step and emit each step once it is closed.

    Event time decides: a step closes when a reading at least ``lateness`` past its end has arrived
    (devices report on their own schedules, so a little lateness keeps a slower device's readings in
    their step). A reading for a step already emitted is late and only counted. ``flush`` closes the
    open steps of an area that has gone silent, so its last readings are still judged.
    """

    def __init__(self, spec: FeatureSpec, lateness: timedelta = timedelta(0)) -> None:
        self.spec = spec
        self.step = pd.Timedelta(spec.freq).to_pytimedelta()
        self.lateness = lateness
        self._open: dict[datetime, dict[str, list[float]]] = {}  # step -> label -> [sum, count]
        self._next: datetime | None = None  # first step not emitted yet
        self._newest: datetime | None = None
        self._arrived: datetime | None = None
        self._last: dict[str, tuple[float, int]] = {}  # label -> (value, steps held)
        self.late = 0

    def _floor(self, ts: datetime) -> datetime:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return epoch + ((ts - epoch) // self.step) * self.step

    def add(
        self, label: str, ts: datetime, value: float, arrived: datetime | None = None
    ) -> list[tuple[datetime, dict[str, float | None]]]:
        """Add one reading; return the steps this closed (oldest first), each as (step start, row)."""
        step = self._floor(ts)
        if self._next is not None and step < self._next:
            self.late += 1  # its step was already judged; a late value cannot change that
            return []
        if self._next is None:
            self._next = step
        cell = self._open.setdefault(step, {}).setdefault(label, [0.0, 0])
        cell[0] += value
        cell[1] += 1
        if self._newest is None or ts > self._newest:
            self._newest = ts
        self._arrived = arrived
        return self._emit_until(self._floor(self._newest - self.lateness))

    def flush(self, now: datetime, grace: timedelta) -> list[tuple[datetime, dict[str, float | None]]]:
        """Close the steps that ended ``grace`` ago if nothing arrived for ``grace`` (wall clock)."""
        if not self._open or self._arrived is None or now - self._arrived < grace:
            return []
        return self._emit_until(min(self._floor(now - grace), max(self._open) + self.step))

    def _emit_until(self, until: datetime) -> list[tuple[datetime, dict[str, float | None]]]:
        """Emit every step from the first unemitted one up to ``until`` (exclusive)."""
        closed: list[tuple[datetime, dict[str, float | None]]] = []
        if self._next is None or until <= self._next:
            return closed
        # After a long silence only the last ``keep`` empty steps matter (to the windows and to the hold).
        keep = max(self.spec.memory, self.spec.fill_limit + 1)
        cursor = self._next
        while cursor < until:
            if cursor not in self._open:
                following = min((s for s in self._open if cursor < s < until), default=until)
                if (following - cursor) / self.step > keep:
                    self._last = {label: (v, self.spec.fill_limit) for label, (v, _) in self._last.items()}
                    cursor = following - keep * self.step
            closed.append((cursor, self._row(self._open.pop(cursor, {}))))
            cursor += self.step
        self._next = until
        return closed

    def _row(self, cells: dict[str, list[float]]) -> dict[str, float | None]:
        row: dict[str, float | None] = {}
        for label in self.spec.points:
            if label in cells:
                value = cells[label][0] / cells[label][1]
                self._last[label] = (value, 0)
                row[label] = value
            elif label in self._last and self._last[label][1] < self.spec.fill_limit:
                value, held = self._last[label]
                self._last[label] = (value, held + 1)
                row[label] = value
            else:
                row[label] = None
        return row


@dataclass(slots=True)
class Binding:
    """One model scoring one area: its fitted detector, feature state, trigger and mode."""

    model_id: int
    site: str
    area: str
    shadow: bool
    mode_changed_at: datetime
    detector: ModelDetector
    spec: FeatureSpec
    point_labels: dict[int, str]
    trigger: Trigger = field(default_factory=lambda: Trigger(levels=DEFAULT_LEVELS, deadband=0.1))
    accumulator: GridAccumulator = field(init=False)
    features: OnlineFeatures = field(init=False)

    lateness: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        self.accumulator = GridAccumulator(self.spec, self.lateness)
        self.features = OnlineFeatures(self.spec)

    @property
    def label_points(self) -> dict[str, int]:
        return {label: pid for pid, label in self.point_labels.items()}


@dataclass(frozen=True, slots=True)
class ModelFinding:
    """A change of a model's severity as recorded in ``detector_finding``."""

    model_id: int
    ts: datetime
    severity: Severity
    score: float | None
    shadow: bool
    contributors: list[dict[str, Any]]
    batch_id: str


class ScoringStage:
    """The detectors' stage of the ingest pipeline (``evaluate``) and its recorder (``record``)."""

    def __init__(
        self,
        bindings: Iterable[Binding] = (),
        *,
        store: ArtifactStore | None = None,
        grace: timedelta = timedelta(seconds=2),
        reload_s: float = 10.0,
        top: int = 3,
        now: Any = None,
    ) -> None:
        self.store = store
        self.grace = grace
        self.reload_s = reload_s
        self.top = top
        self._now = now or (lambda: datetime.now(UTC))
        self._bindings: dict[int, Binding] = {}
        self._by_point: dict[int, list[Binding]] = {}
        self._scores: deque[tuple[int, datetime, float, bool]] = deque()
        self._findings: deque[ModelFinding] = deque()
        self._swap = threading.Lock()
        self._version: tuple[int, datetime | None] | None = None
        self._checked_at = 0.0
        self.set_bindings(list(bindings))

    # -- bindings ------------------------------------------------------------------------------------

    def set_bindings(self, bindings: Sequence[Binding]) -> None:
        """Replace the bound models (atomically for the stage thread)."""
        by_point: dict[int, list[Binding]] = {}
        for binding in bindings:
            for pid in binding.point_labels:
                by_point.setdefault(pid, []).append(binding)
        with self._swap:
            self._bindings = {b.model_id: b for b in bindings}
            self._by_point = by_point

    @property
    def bindings(self) -> dict[int, Binding]:
        return self._bindings

    def load(self, *, conn: psycopg.Connection) -> None:
        """(Re)load shadow and enabled models from the database, keeping the state of unchanged ones."""
        if self.store is None:
            raise RuntimeError("a ScoringStage needs an artifact store to load models")
        old = self._bindings
        fresh: list[Binding] = []
        for row in service.list_models(conn=conn, modes=(service.SHADOW, service.ENABLED)):
            kept = old.get(row.id)
            if kept is not None and kept.mode_changed_at == row.mode_changed_at:
                fresh.append(kept)
                continue
            try:
                fresh.append(self._bind(row, kept))
            except Exception:  # a broken artifact must not stop the other models, nor ingest
                _LOGGER.exception("model %d (%s) cannot be loaded; it is not scored", row.id, row.artifact)
        self.set_bindings(fresh)
        self._version = service.modes_version(conn=conn)
        _LOGGER.info(
            "scoring %d model(s): %s",
            len(fresh),
            ", ".join(f"{b.model_id} {b.site}/{b.area} {'shadow' if b.shadow else 'enabled'}" for b in fresh) or "none",
        )

    def _bind(self, row: service.ModelRow, kept: Binding | None) -> Binding:
        spec = FeatureSpec.from_dict(row.feature_spec)
        if kept is not None:
            # Only the mode changed: keep the feature state, restart the trigger so that an anomaly in
            # progress is reported at once under the new mode.
            binding = Binding(
                row.id, row.site, row.area, row.shadow, row.mode_changed_at, kept.detector, spec, kept.point_labels
            )
            binding.accumulator, binding.features = kept.accumulator, kept.features
            return binding
        assert self.store is not None
        detector = self.store.load(row.artifact)
        if not isinstance(detector, ModelDetector) or tuple(detector.features) != spec.names:
            raise ValueError(f"artifact {row.artifact} does not match model {row.id}'s features")
        detector.prepare()
        labels = dict(zip(row.point_ids, spec.points, strict=True))
        return Binding(row.id, row.site, row.area, row.shadow, row.mode_changed_at, detector, spec, labels)

    # -- hot path (stage thread) ---------------------------------------------------------------------

    def evaluate(self, batch: BatchLike) -> None:
        """Feed a decoded batch to the bound models; no I/O."""
        by_point = self._by_point
        if not by_point:
            return
        now = self._now()
        for ts, point_id, value, _quality in batch.decoded.rows:
            bound = by_point.get(point_id)
            if bound is None or value is None or not math.isfinite(value):
                continue
            for binding in bound:
                for step, row in binding.accumulator.add(binding.point_labels[point_id], ts, value, now):
                    self._score(binding, step, row, batch)
        for binding in self._bindings.values():
            for step, row in binding.accumulator.flush(now, self.grace):
                self._score(binding, step, row, batch)

    def _score(self, binding: Binding, step: datetime, row: dict[str, float | None], batch: BatchLike) -> None:
        vector = binding.features.push(row)
        ts = step + binding.accumulator.step  # a step is judged when it ends
        score = binding.detector.score_one(vector, ts)
        binding.detector.learn_one(vector, ts)
        if score is not None:
            self._scores.append((binding.model_id, ts, score, binding.shadow))
        severity = binding.trigger.update(score, ts)
        if severity is None:
            return
        contributors = self._contributors(binding, vector) if severity > Severity.NORMAL else []
        self._findings.append(
            ModelFinding(binding.model_id, ts, severity, score, binding.shadow, contributors, batch.id)
        )
        if not binding.shadow:
            batch.findings.append(self._finding(binding, ts, severity, score, contributors, batch.id))

    def _contributors(self, binding: Binding, vector: dict[str, float | None]) -> list[dict[str, Any]]:
        points = binding.label_points
        out: dict[str, dict[str, Any]] = {}
        for feature, contribution in binding.detector.explain(vector, top=len(binding.spec.names)):
            label = point_of(feature)
            entry = out.setdefault(label, {"point_id": points[label], "point": label, "contribution": 0.0})
            entry["contribution"] += contribution
        ranked = sorted(out.values(), key=lambda e: -e["contribution"])[: self.top]
        return [{**e, "contribution": round(e["contribution"], 4)} for e in ranked]

    @staticmethod
    def _finding(
        binding: Binding,
        ts: datetime,
        severity: Severity,
        score: float | None,
        contributors: list[dict[str, Any]],
        batch_id: str,
    ) -> Finding:
        names = ", ".join(c["point"] for c in contributors) or "-"
        return Finding(
            rule=f"detector_model:{binding.model_id}",
            detector=binding.detector.key,
            subject=SubjectRef(site=binding.site, area=binding.area),
            severity=severity,
            ts=ts,
            score=score,
            message=f"anomaly model {binding.model_id} of {binding.site}/{binding.area}: {severity} "
            f"(score {score:.2f}); most unusual: {names}"
            if score is not None
            else "",
            caused_by=batch_id,
            details={"model_id": binding.model_id, "contributors": contributors},
        )

    # -- record thread -------------------------------------------------------------------------------

    def record(self, conn: psycopg.Connection, batch: BatchLike | None = None) -> None:
        """Write the scores and findings gathered so far (inside the caller's transaction); maybe reload."""
        scores = _drain(self._scores)
        findings = _drain(self._findings)
        try:
            # A savepoint: a failure here costs the model telemetry, never the readings of the batch.
            with conn.transaction():
                service.record_scores(conn=conn, rows=scores)
                service.record_findings(
                    conn=conn,
                    rows=[
                        (f.model_id, f.ts, int(f.severity), f.score, f.shadow, f.contributors, f.batch_id)
                        for f in findings
                    ],
                )
                if self.store is not None and time.monotonic() - self._checked_at >= self.reload_s:
                    self._checked_at = time.monotonic()
                    if service.modes_version(conn=conn) != self._version:
                        self.load(conn=conn)
        except psycopg.OperationalError:
            raise  # the database is down: the runner spools the batch
        except Exception:
            _LOGGER.exception("recording %d scores and %d findings failed; dropped", len(scores), len(findings))


def _drain(queue: deque[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(queue.popleft())
        except IndexError:
            return out
