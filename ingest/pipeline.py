"""The ingest pipeline: drain -> decode -> evaluate -> act, then record and acknowledge (STYLE.md B3).

Two threads. The *stage* thread takes whatever messages are queued (natural batching: no waiting to fill a
batch, so latency stays low at low rates and batches grow under load), decodes them, runs the detectors and
the interlock stage, and hands the batch on. The *record* thread merges all batches waiting for it into one
transaction, commits, and only then acknowledges their MQTT messages. While the database is down the batches
go to the disk spool (and are acknowledged once spooled); they are replayed when it is back.

Isolation by message (no input may stop the safety loop): a message the decoder raises on becomes a
``decode_error`` dead letter; when a detector raises on a batch, its messages are judged again one by one and the
one that raises becomes a ``detector_error`` dead letter (its readings are still stored). When the database
refuses a batch for its data (not an outage), the batch is split in halves until the refused messages, and
within a message the refused rows, are found: they become ``db_refused`` dead letters, everything else commits.
A spool append that fails (disk full) leaves the batch unacknowledged, held, and tried again; spool files that
cannot be replayed are set aside with a system alarm (``ingest.spool_quarantined``).

The stages are injected callables, so this module imports only ``core`` (STYLE.md B2).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core import topics
from core.errors import StoreUnavailable
from core.liveness import Liveness
from core.model import Finding, Severity, SubjectRef
from core.text import describe
from ingest.decoders import Decoded, RawMessage, Reason, Reject, error_reject
from ingest.spool import Spool

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """Messages decoded together, with what the later stages derived from them."""

    id: str
    messages: list[RawMessage]
    decoded: Decoded
    findings: list[Any] = field(default_factory=list)
    #: Dead letters found after decoding (a detector raised on a message); recorded with the batch.
    late_rejects: list[Reject] = field(default_factory=list)

    @staticmethod
    def merge(batches: list[Batch]) -> Batch:
        if len(batches) == 1:
            return batches[0]
        merged = Decoded()
        findings: list[Any] = []
        messages: list[RawMessage] = []
        late: list[Reject] = []
        aligned = all(
            len(b.decoded.ends) == len(b.messages)
            and (
                not b.decoded.ends
                or b.decoded.ends[-1] == (len(b.decoded.rows), len(b.decoded.rejects), len(b.decoded.statuses))
            )
            for b in batches
        )
        for b in batches:
            if aligned:
                base = (len(merged.rows), len(merged.rejects), len(merged.statuses))
                merged.ends += [(base[0] + r, base[1] + j, base[2] + s) for r, j, s in b.decoded.ends]
            merged.rows += b.decoded.rows
            merged.rejects += b.decoded.rejects
            merged.statuses += b.decoded.statuses
            findings += b.findings
            messages += b.messages
            late += b.late_rejects
        return Batch(batches[0].id, messages, merged, findings, late)

    def fold_late_rejects(self) -> None:
        """Put the late dead letters into ``decoded`` (after the last message's mark: they stand alone)."""
        if self.late_rejects:
            self.decoded.rejects += self.late_rejects
            self.late_rejects = []


@dataclass
class Counters:
    """Ingest counters, exported in the heartbeat and the API."""

    received: int = 0
    readings_written: int = 0
    readings_duplicate: int = 0
    rejected: int = 0
    spooled_batches: int = 0
    spooled_readings: int = 0
    replayed_batches: int = 0
    transactions: int = 0
    db_up: bool = True
    last_commit_ms: float = 0.0
    #: Wall-clock time (epoch seconds) of the last commit, for end-to-end measurements.
    committed_at: float = 0.0
    # isolation by message (issue 11)
    #: batches the database refused for their data, split until the refused parts were found
    isolated_batches: int = 0
    #: messages (or their parts) the database refused, kept as ``db_refused`` dead letters
    refused: int = 0
    #: messages a detector raised on, kept as ``detector_error`` dead letters
    detector_errors: int = 0
    #: spool appends that failed (disk full...): the batch stayed unacknowledged and was tried again
    spool_append_failures: int = 0
    #: spool files set aside because they cannot be replayed
    spool_quarantined: int = 0

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        return {**self.__dict__, **extra}


Record = Callable[[Batch], Any]


class Pipeline:
    """Run the stages over a queue of raw messages until ``stop`` is called."""

    def __init__(
        self,
        *,
        source: queue.Queue[RawMessage],
        decode: Callable[[list[RawMessage]], Decoded],
        record: Record,
        ack: Callable[[list[RawMessage]], None],
        spool: Spool,
        evaluate: Callable[[Batch], None] | None = None,
        act: Callable[[Batch], None] | None = None,
        tick: Callable[[Batch], None] | None = None,
        probe: Callable[[], None] | None = None,
        batch_max_messages: int = 1000,
        batch_max_readings: int = 60000,
        retry_max_s: float = 30.0,
        handoff_size: int = 4,
        tick_s: float = 1.0,
        liveness: Liveness | None = None,
    ) -> None:
        self.source = source
        self.decode = decode
        self.record = record
        self.ack = ack
        self.spool = spool
        self.evaluate = evaluate
        self.act = act
        self.tick = tick
        self.probe = probe
        self.batch_max_messages = batch_max_messages
        self.batch_max_readings = batch_max_readings
        self.retry_max_s = retry_max_s
        self.tick_s = tick_s
        self.liveness = liveness or Liveness()
        self.counters = Counters(db_up=not spool.pending())
        self._handoff: queue.Queue[Batch | None] = queue.Queue(maxsize=handoff_size)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._retry_at = 0.0
        self._retry_delay = 1.0
        #: A batch neither committed nor spooled (the spool append failed): unacknowledged, tried again.
        self._held: Batch | None = None
        self._held_delay = 1.0
        #: System alarms waiting to be recorded (spool files set aside).
        self._alarms: list[Finding] = []
        self._alarms_lock = threading.Lock()
        spool.on_quarantine = self._quarantined

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._stage_loop, name="ingest-stages", daemon=True),
            threading.Thread(target=self._record_loop, name="ingest-record", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batches in hand, then stop (what is still queued stays unacknowledged)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def queue_depth(self) -> int:
        return self.source.qsize()

    # --- stage thread ---------------------------------------------------------------------------------------

    def _drain(self) -> list[RawMessage]:
        try:
            first = self.source.get(timeout=0.2)
        except queue.Empty:
            return []
        messages = [first]
        get = self.source.get_nowait
        try:
            while len(messages) < self.batch_max_messages:
                messages.append(get())
        except queue.Empty:
            pass
        return messages

    def _stage_loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            messages = self._drain()
            self.liveness.beat("stages", progress=bool(messages))
            if not messages:
                # The ``tick`` stage runs at least every ``tick_s`` when nothing arrives: silence is a finding,
                # and a detector can only notice it if it is asked. The empty batch is recorded only if the
                # tick found something.
                if self.tick is None or time.monotonic() < next_tick:
                    continue
            next_tick = time.monotonic() + self.tick_s
            self.counters.received += len(messages)
            batch = Batch(uuid.uuid4().hex, messages, self._decode(messages) if messages else Decoded())
            if messages and self.evaluate is not None:
                self._evaluate(batch)
            for stage in (None if messages else self.tick, self.act):
                if stage is not None:
                    try:
                        stage(batch)
                    except Exception:  # an interlock bug must not stop ingest
                        _LOGGER.exception("stage %s failed on batch %s", getattr(stage, "__name__", stage), batch.id)
            if messages or batch.findings or batch.late_rejects:
                self._handoff.put(batch)
        self._handoff.put(None)

    def _decode(self, messages: list[RawMessage]) -> Decoded:
        """Decode a batch; should the decoder itself raise, decode message by message (``decode_error``)."""
        try:
            return self.decode(messages)
        except Exception:  # noqa: BLE001 - the decoder isolates messages itself; this is the last guard
            _LOGGER.exception("decoding a batch of %d messages failed; decoding them one by one", len(messages))
        out = Decoded()
        for msg in messages:
            try:
                one = self.decode([msg])
            except Exception as exc:  # noqa: BLE001
                one = Decoded(rejects=[error_reject(msg, Reason.DECODE_ERROR, exc)])
            out.rows += one.rows
            out.rejects += one.rejects
            out.statuses += one.statuses
            out.ends.append((len(out.rows), len(out.rejects), len(out.statuses)))
        return out

    def _evaluate(self, batch: Batch) -> None:
        """Run the detectors; if they raise, judge the messages one by one so that only the culprit is lost.

        Findings produced before the exception are kept (the detectors are edge-triggered: a state they moved
        to is not reported twice). Judging a message again is harmless: a detector ignores a point's repeated
        timestamps.
        """
        assert self.evaluate is not None
        try:
            self.evaluate(batch)
            return
        except Exception as exc:  # noqa: BLE001
            if len(batch.messages) == 1:
                self._detector_error(batch, batch.messages[0], exc)
                return
            _LOGGER.warning(
                "a detector raised on batch %s (%s); judging its %d messages one by one",
                batch.id,
                describe(exc),
                len(batch.messages),
            )
        for msg, part in self._message_parts(batch):
            one = Batch(batch.id, [msg], part)
            try:
                self.evaluate(one)
            except Exception as exc:  # noqa: BLE001
                self._detector_error(batch, msg, exc)
            batch.findings += one.findings

    def _message_parts(self, batch: Batch) -> list[tuple[RawMessage, Decoded]]:
        d = batch.decoded
        if len(d.ends) == len(batch.messages):
            starts = [(0, 0, 0), *d.ends[:-1]]
            return [(m, d.part(a, b)) for m, a, b in zip(batch.messages, starts, d.ends, strict=True)]
        return [(m, self._decode([m])) for m in batch.messages]

    def _detector_error(self, batch: Batch, msg: RawMessage, exc: Exception) -> None:
        _LOGGER.error(
            "a detector raised on a message of %s in batch %s: %s",
            msg.topic[:200],
            batch.id,
            describe(exc),
            exc_info=exc,
        )
        self.counters.detector_errors += 1
        batch.late_rejects.append(error_reject(msg, Reason.DETECTOR_ERROR, exc))

    # --- record thread ----------------------------------------------------------------------------------------

    def _take(self) -> tuple[list[Batch], bool]:
        """Block for one batch, then take what else is waiting, up to the size of one transaction."""
        try:
            first = self._handoff.get(timeout=0.5)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        batches, readings = [first], len(first.decoded.rows)
        while readings < self.batch_max_readings:
            try:
                nxt = self._handoff.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batches, True
            batches.append(nxt)
            readings += len(nxt.decoded.rows)
        return batches, False

    def _record_loop(self) -> None:
        finished = False
        while True:
            if self._held is not None:
                # the last batch could be neither committed nor spooled: it stays unacknowledged (the broker
                # keeps its messages) and nothing new is taken until it is (back-pressure to the broker)
                if self._stop.is_set():
                    _LOGGER.warning(
                        "stopping with batch %s neither committed nor spooled; the broker will "
                        "deliver its %d messages again",
                        self._held.id,
                        len(self._held.messages),
                    )
                    return
                if not self.counters.db_up:
                    self._try_recover()
                self._held = self._record(self._held)
                if self._held is None:
                    self._held_delay = 1.0
                else:
                    self._stop.wait(self._held_delay)
                    self._held_delay = min(self._held_delay * 2, self.retry_max_s)
                continue
            if finished:
                return
            batches, finished = self._take()
            self.liveness.beat("record", progress=bool(batches))
            if not self.counters.db_up:
                self._try_recover()
            elif self._alarms:
                self._record_alarms()
            if batches:
                batch = Batch.merge(batches)
                batch.fold_late_rejects()
                self._held = self._record(batch)

    def _record(self, batch: Batch) -> Batch | None:
        """Commit (or spool) and acknowledge the batch; if it could be neither, return what is left of it (it is
        then held, unacknowledged, and tried again)."""
        if self.counters.db_up:
            started = time.perf_counter()
            try:
                result = self.record(batch)
            except StoreUnavailable as exc:
                _LOGGER.error("database unavailable, spooling to %s: %s", self.spool.directory, exc)
                self._enter_down()
            except Exception as exc:  # noqa: BLE001 - refused for its data: find the culprits, commit the rest
                try:
                    self._isolate(batch, exc)
                except _Interrupted as stop:
                    _LOGGER.error(
                        "database unavailable while isolating batch %s, spooling the rest: %s", batch.id, stop.cause
                    )
                    self._enter_down()
                    batch = Batch(batch.id, batch.messages, stop.rest, stop.findings)
                else:
                    self.ack(batch.messages)
                    return None
            else:
                self._count(result, (time.perf_counter() - started) * 1000)
                self.ack(batch.messages)
                return None
        try:
            self.spool.append(batch.decoded, batch.findings)
        except Exception as exc:  # noqa: BLE001 - disk full: keep the messages unacknowledged and try again
            self.counters.spool_append_failures += 1
            _LOGGER.error(
                "cannot spool batch %s (%s); its %d messages stay unacknowledged and it is tried again",
                batch.id,
                describe(exc),
                len(batch.messages),
            )
            return batch
        self.counters.spooled_batches += 1
        self.counters.spooled_readings += len(batch.decoded.rows)
        self.ack(batch.messages)
        return None

    def _count(self, result: Any, elapsed_ms: float) -> None:
        self.counters.transactions += 1
        self.counters.last_commit_ms = elapsed_ms
        self.counters.committed_at = time.time()
        if result is not None:
            self.counters.readings_written += result.written
            self.counters.readings_duplicate += result.duplicates
            self.counters.rejected += result.rejects

    # --- isolation: the database refused a batch for its data ------------------------------------------------

    def _isolate(self, batch: Batch, first: BaseException) -> None:
        """Commit everything of ``batch`` except what the database refuses, which becomes dead letters.

        The batch is split in halves (messages first, then a refused message's rows, dead letters and statuses,
        and findings one by one) until each refused part stands alone. Raises ``_Interrupted`` with what is not
        committed yet if the database goes away meanwhile.
        """
        self.counters.isolated_batches += 1
        _LOGGER.error(
            "the database refused batch %s (%s); looking for the messages it refuses", batch.id, describe(first)
        )
        refused: list[tuple[_Unit, BaseException]] = []
        stack: list[list[_Unit]] = [_units(batch)]
        while stack:
            part = stack.pop()
            try:
                self._count(self.record(_compose(batch.id, part)), 0.0)
            except StoreUnavailable as exc:
                rest = [u for p in (part, *stack) for u in p]
                raise _Interrupted(
                    exc,
                    _compose(batch.id, rest).decoded,
                    [f for u in rest for f in u.findings],
                    [_refused_reject(u, e) for u, e in refused],
                ) from exc
            except Exception as exc:  # noqa: BLE001
                if len(part) > 1:
                    mid = len(part) // 2
                    stack += [part[mid:], part[:mid]]
                elif len(atoms := _atoms(part[0])) > 1 and _data_error(exc):
                    stack.append(atoms)
                else:
                    refused.append((part[0], exc))
        if refused:
            self._dead_letter([_refused_reject(u, e) for u, e in refused])

    def _dead_letter(self, rejects: list[Reject]) -> None:
        self.counters.refused += len(rejects)
        for r in rejects:
            _LOGGER.error("kept as a dead letter (db_refused): %s on %s", r.detail[:300], r.topic[:200])
        try:
            self._count(self.record(Batch(uuid.uuid4().hex, [], Decoded(rejects=rejects))), 0.0)
        except StoreUnavailable as exc:
            raise _Interrupted(exc, Decoded(rejects=rejects), [], []) from exc
        except Exception:  # noqa: BLE001 - even the dead letter is refused: the log above is all that is left
            _LOGGER.exception("the database refuses the dead letters themselves; they are only in this log")

    # --- spool ------------------------------------------------------------------------------------------------

    def _enter_down(self) -> None:
        self.counters.db_up = False
        self._retry_delay = 1.0
        self._retry_at = time.monotonic() + self._retry_delay

    def _quarantined(self, path: Path, reason: str) -> None:
        """A spool file was set aside: raise (and at once return to normal) a system alarm, to be acknowledged."""
        self.counters.spool_quarantined += 1
        now = datetime.now(UTC)
        subject = SubjectRef("_service", None, "ingest", "spool")
        details = {
            "finding_id": f"spool:{path.name}",
            "name": "采集缓存文件无法回放",
            "type": "system",
            "name_en": "Ingest spool file cannot be replayed",
            "plan": [],
            "drill": False,
        }
        message = f"spool file {path.name} cannot be replayed ({reason[:300]}); set aside as {path}"
        with self._alarms_lock:
            self._alarms += [
                Finding(
                    rule=SPOOL_RULE,
                    detector="system",
                    subject=subject,
                    severity=Severity.HIGH,
                    ts=now,
                    message=message,
                    details=details,
                ),
                Finding(
                    rule=SPOOL_RULE,
                    detector="system",
                    subject=subject,
                    severity=Severity.NORMAL,
                    ts=now + timedelta(milliseconds=1),
                    message=message,
                    details=details,
                ),
            ]

    def _record_alarms(self) -> None:
        with self._alarms_lock:
            findings, self._alarms = self._alarms, []
        if not findings:
            return
        try:
            self._count(self.record(Batch(uuid.uuid4().hex, [], Decoded(), findings)), 0.0)
        except Exception as exc:  # noqa: BLE001 - kept for the next pass
            _LOGGER.warning("system alarm not recorded yet (%s); trying again later", describe(exc))
            with self._alarms_lock:
                self._alarms[:0] = findings

    def _try_recover(self) -> None:
        """Probe the database with backoff; once it answers, replay the spool oldest first."""
        if time.monotonic() < self._retry_at:
            return
        try:
            if self.probe is not None:
                self.probe()
            for path, decoded, findings in self.spool.replay():
                self.liveness.beat("record", progress=True)  # a long replay is progress, not a hang
                batch = Batch(path.stem, [], decoded, findings)
                try:
                    self._count(self.record(batch), 0.0)
                except StoreUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001
                    # not an outage but rows the database refuses: they become dead letters, the rest commits
                    try:
                        self._isolate(batch, exc)
                    except _Interrupted as stop:
                        raise stop.cause from stop
                self.spool.done(path)
                self.counters.replayed_batches += 1
        except Exception as exc:  # still down: back off
            self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)
            self._retry_at = time.monotonic() + self._retry_delay
            _LOGGER.info("database still unavailable (%s); next try in %.0f s", exc, self._retry_delay)
            return
        _LOGGER.warning("database is back; spool replayed")
        self.counters.db_up = True
        self._record_alarms()

    def recover_now(self) -> None:
        """Replay a spool left by an earlier run (called once at start, before messages flow)."""
        if self.spool.pending():
            self._retry_at = 0.0
            self.counters.db_up = False
            self._try_recover()


#: The system alarm raised when a spool file cannot be replayed.
SPOOL_RULE = "ingest.spool_quarantined"


class _Interrupted(Exception):
    """The database went away while a refused batch was being split: what is not committed yet."""

    def __init__(self, cause: StoreUnavailable, rest: Decoded, findings: list[Any], dead: list[Reject]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.rest = Decoded(rest.rows, rest.rejects + dead, rest.statuses)
        self.findings = findings


@dataclass(slots=True)
class _Unit:
    """A part of a batch that is committed or refused as a whole: a message, or one row, dead letter,
    status change or finding."""

    msg: RawMessage | None
    decoded: Decoded
    findings: list[Any]
    what: str


def _units(batch: Batch) -> list[_Unit]:
    d = batch.decoded
    units: list[_Unit] = []
    start = (0, 0, 0)
    if batch.messages and len(d.ends) == len(batch.messages):
        for msg, end in zip(batch.messages, d.ends, strict=True):
            units.append(_Unit(msg, d.part(start, end), [], "the message"))
            start = end
    units += _atoms(_Unit(None, d.part(start, (len(d.rows), len(d.rejects), len(d.statuses))), [], ""))
    units += [
        _Unit(
            None,
            Decoded(),
            [f],
            f"finding {getattr(f, 'rule', '?')} of {getattr(getattr(f, 'subject', None), 'key', '?')}",
        )
        for f in batch.findings
    ]
    return units


def _atoms(unit: _Unit) -> list[_Unit]:
    """The single rows, dead letters and status changes of a unit (a message's parts keep their message)."""
    d, msg = unit.decoded, unit.msg
    return (
        [_Unit(msg, Decoded(rows=[r]), [], f"reading of point {r[1]} at {_iso(r[0])}") for r in d.rows]
        + [_Unit(msg, Decoded(rejects=[j]), [], f"dead letter {j.reason.value}") for j in d.rejects]
        + [_Unit(msg, Decoded(statuses=[s]), [], f"status of device {s.device_id}") for s in d.statuses]
        + [_Unit(msg, Decoded(), [f], "a finding") for f in unit.findings]
    )


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)[:60]


def _compose(batch_id: str, units: list[_Unit]) -> Batch:
    out = Decoded()
    findings: list[Any] = []
    for u in units:
        out.rows += u.decoded.rows
        out.rejects += u.decoded.rejects
        out.statuses += u.decoded.statuses
        findings += u.findings
    return Batch(batch_id, [], out, findings)


def _data_error(exc: BaseException) -> bool:
    """The database (or the driver) refused the data itself: a data exception or an integrity violation."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate[:2] in ("22", "23") or any(c.__name__ in ("DataError", "IntegrityError") for c in type(exc).__mro__)


def _refused_reject(unit: _Unit, exc: BaseException) -> Reject:
    """The dead letter of a part the database refused: the message it came from, and what was refused."""
    detail = f"{describe(exc, 400)}; refused: {unit.what}"
    if unit.msg is not None:
        msg = unit.msg
        parsed = topics.parse(msg.topic) if isinstance(msg.topic, str) else None
        return Reject(
            msg.topic,
            bytes(msg.payload[:_MAX_KEPT]),
            len(msg.payload),
            msg.received_at,
            Reason.DB_REFUSED,
            detail,
            parsed and parsed.site,
            parsed and parsed.device,
        )
    if len(unit.decoded.rejects) == 1 and not unit.decoded.rows:
        r = unit.decoded.rejects[0]
        return Reject(
            r.topic,
            r.payload,
            r.payload_size,
            r.received_at,
            Reason.DB_REFUSED,
            f"{detail} ({r.reason.value}: {r.detail[:300]})",
            r.site,
            r.device,
        )
    rows = [tuple(row) for row in unit.decoded.rows]  # shown as the plain tuples they always were
    shown = repr((rows, unit.decoded.statuses, unit.findings)).encode("utf-8", "backslashreplace")
    return Reject(
        "(spool)" if not unit.findings else "(finding)",
        shown[:_MAX_KEPT],
        len(shown),
        datetime.now(UTC),
        Reason.DB_REFUSED,
        detail,
    )


_MAX_KEPT = 256 * 1024
