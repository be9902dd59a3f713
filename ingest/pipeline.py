"""The ingest pipeline: drain -> decode -> evaluate -> act, then record and acknowledge (STYLE.md B3).

Two threads. The *stage* thread takes whatever messages are queued (natural batching: no waiting to fill a
batch, so latency stays low at low rates and batches grow under load), decodes them, runs the detectors and
the interlock stage, and hands the batch on. The *record* thread merges all batches waiting for it into one
transaction, commits, and only then acknowledges their MQTT messages. While the database is down the batches
go to the disk spool (and are acknowledged once spooled); they are replayed when it is back.

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
from typing import Any

from core.errors import StoreUnavailable
from core.liveness import Liveness
from ingest.decoders import Decoded, RawMessage
from ingest.spool import Spool

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """Messages decoded together, with what the later stages derived from them."""

    id: str
    messages: list[RawMessage]
    decoded: Decoded
    findings: list[Any] = field(default_factory=list)

    @staticmethod
    def merge(batches: list[Batch]) -> Batch:
        if len(batches) == 1:
            return batches[0]
        merged = Decoded()
        findings: list[Any] = []
        messages: list[RawMessage] = []
        for b in batches:
            merged.rows += b.decoded.rows
            merged.rejects += b.decoded.rejects
            merged.statuses += b.decoded.statuses
            findings += b.findings
            messages += b.messages
        return Batch(batches[0].id, messages, merged, findings)


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

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._stage_loop, name="ingest-stages", daemon=True),
                         threading.Thread(target=self._record_loop, name="ingest-record", daemon=True)]
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
            batch = Batch(uuid.uuid4().hex, messages, self.decode(messages) if messages else Decoded())
            for stage in (self.evaluate if messages else self.tick, self.act):
                if stage is not None:
                    try:
                        stage(batch)
                    except Exception:  # a detector or interlock bug must not stop ingest
                        _LOGGER.exception("stage %s failed on batch %s", getattr(stage, "__name__", stage),
                                          batch.id)
            if messages or batch.findings:
                self._handoff.put(batch)
        self._handoff.put(None)

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
        while not finished:
            batches, finished = self._take()
            self.liveness.beat("record", progress=bool(batches))
            if not self.counters.db_up:
                self._try_recover()
            if batches:
                self._record(Batch.merge(batches))

    def _record(self, batch: Batch) -> None:
        if self.counters.db_up:
            started = time.perf_counter()
            try:
                result = self.record(batch)
            except StoreUnavailable as exc:
                _LOGGER.error("database unavailable, spooling to %s: %s", self.spool.directory, exc)
                self._enter_down()
            except Exception:
                _LOGGER.exception("recording batch %s failed; spooling it", batch.id)
                self._enter_down()
            else:
                self._count(result, (time.perf_counter() - started) * 1000)
                self.ack(batch.messages)
                return
        self.spool.append(batch.decoded, batch.findings)
        self.counters.spooled_batches += 1
        self.counters.spooled_readings += len(batch.decoded.rows)
        self.ack(batch.messages)

    def _count(self, result: Any, elapsed_ms: float) -> None:
        self.counters.transactions += 1
        self.counters.last_commit_ms = elapsed_ms
        self.counters.committed_at = time.time()
        if result is not None:
            self.counters.readings_written += result.written
            self.counters.readings_duplicate += result.duplicates
            self.counters.rejected += result.rejects

    def _enter_down(self) -> None:
        self.counters.db_up = False
        self._retry_delay = 1.0
        self._retry_at = time.monotonic() + self._retry_delay

    def _try_recover(self) -> None:
        """Probe the database with backoff; once it answers, replay the spool oldest first."""
        if time.monotonic() < self._retry_at:
            return
        try:
            if self.probe is not None:
                self.probe()
            for path, decoded, findings in self.spool.replay():
                self.liveness.beat("record", progress=True)      # a long replay is progress, not a hang
                try:
                    self._count(self.record(Batch(path.stem, [], decoded, findings)), 0.0)
                except StoreUnavailable:
                    raise
                except Exception:
                    # not an outage but a batch the database refuses: set it aside for a person, keep going
                    _LOGGER.exception("spooled batch %s cannot be written; moved to %s", path.name,
                                      self.spool.quarantine(path))
                    continue
                self.spool.done(path)
                self.counters.replayed_batches += 1
        except Exception as exc:  # still down: back off
            self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)
            self._retry_at = time.monotonic() + self._retry_delay
            _LOGGER.debug("database still unavailable (%s); next try in %.0f s", exc, self._retry_delay)
            return
        _LOGGER.warning("database is back; spool replayed")
        self.counters.db_up = True

    def recover_now(self) -> None:
        """Replay a spool left by an earlier run (called once at start, before messages flow)."""
        if self.spool.pending():
            self._retry_at = 0.0
            self.counters.db_up = False
            self._try_recover()
