"""The pipeline with stand-in stages: acknowledge only after commit or spool; spool while the database is
down and replay it oldest first; a failing detector stage does not stop ingest."""

from __future__ import annotations

import queue
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from core.errors import StoreUnavailable
from core.model import Finding, Severity, SubjectRef
from ingest.decoders import Decoded, RawMessage
from ingest.pipeline import Batch, Pipeline
from ingest.spool import Spool
from ingest.writer import WriteResult
from tests.support import wait_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _decode(messages: list[RawMessage]) -> Decoded:
    return Decoded(rows=[(NOW, int(orjson.loads(m.payload)["i"]), 1.0, 0) for m in messages])


class FakeStore:
    """Stands in for PostgreSQL: can be taken down; records committed rows."""

    def __init__(self) -> None:
        self.up = True
        self.rows: list[int] = []
        self.log: list[str] = []
        self.lock = threading.Lock()

    def record(self, batch: Batch) -> WriteResult:
        with self.lock:
            if not self.up:
                raise StoreUnavailable("down")
            self.rows += [r[1] for r in batch.decoded.rows]
            self.log.append(f"commit {len(batch.decoded.rows)}")
            return WriteResult(len(batch.decoded.rows), 0, 0)

    def probe(self) -> None:
        if not self.up:
            raise StoreUnavailable("down")


def _pipeline(tmp_path: Path, store: FakeStore, acked: list[int], **kw) -> tuple[Pipeline, queue.Queue]:
    source: queue.Queue = queue.Queue(maxsize=1000)

    def ack(messages: list[RawMessage]) -> None:
        with store.lock:
            store.log.append(f"ack {len(messages)}")
        acked.extend(m.mid for m in messages)

    pipeline = Pipeline(
        source=source,
        decode=_decode,
        record=store.record,
        ack=ack,
        spool=Spool(tmp_path),
        probe=store.probe,
        retry_max_s=0.2,
        **kw,
    )
    pipeline._retry_delay = 0.05
    return pipeline, source


def _put(source: queue.Queue, i: int) -> None:
    source.put(RawMessage("t", orjson.dumps({"i": i}), 1, False, NOW, i))


def test_acknowledges_only_after_commit(tmp_path: Path) -> None:
    store, acked = FakeStore(), []
    pipeline, source = _pipeline(tmp_path, store, acked)
    pipeline.start()
    for i in range(100):
        _put(source, i)
    wait_for(lambda: len(acked) == 100)
    pipeline.stop()
    assert sorted(store.rows) == list(range(100))
    first_commit = store.log.index(next(e for e in store.log if e.startswith("commit")))
    first_ack = store.log.index(next(e for e in store.log if e.startswith("ack")))
    assert first_commit < first_ack


def test_spools_while_down_and_replays_in_order(tmp_path: Path) -> None:
    store, acked = FakeStore(), []
    pipeline, source = _pipeline(tmp_path, store, acked)
    pipeline.start()
    _put(source, 0)
    wait_for(lambda: acked == [0])
    store.up = False
    for i in range(1, 50):
        _put(source, i)
    wait_for(lambda: len(acked) == 50, message="spooled messages acknowledged")
    assert store.rows == [0] and pipeline.counters.spooled_batches >= 1 and not pipeline.counters.db_up
    store.up = True
    wait_for(lambda: pipeline.counters.db_up, message="recovery")
    for i in range(50, 60):
        _put(source, i)
    wait_for(lambda: len(store.rows) == 60)
    pipeline.stop()
    assert store.rows == list(range(60))  # replayed oldest first, before newer batches
    assert not list(tmp_path.glob("*.batch"))


def test_a_spool_left_by_a_crash_is_replayed_at_start(tmp_path: Path) -> None:
    finding = Finding(
        "r1",
        "high_limit",
        SubjectRef("s1", "formation", "gas-01", "h2_ppm"),
        Severity.HIGH,
        NOW,
        score=1.3,
        value=130.0,
        details={"limit": 100},
    )
    Spool(tmp_path).append(Decoded(rows=[(NOW, 7, None, 2)]), [finding])
    store, acked = FakeStore(), []
    seen: list[Batch] = []
    original = store.record
    store.record = lambda batch: (seen.append(batch), original(batch))[1]
    pipeline, _ = _pipeline(tmp_path, store, acked)
    pipeline.recover_now()
    assert store.rows == [7] and seen[0].findings == [finding] and seen[0].decoded.rows == [(NOW, 7, None, 2)]


def test_a_failing_stage_does_not_stop_ingest(tmp_path: Path) -> None:
    store, acked = FakeStore(), []

    def broken(batch: Batch) -> None:
        raise RuntimeError("detector bug")

    pipeline, source = _pipeline(tmp_path, store, acked, evaluate=broken)
    pipeline.start()
    for i in range(5):
        _put(source, i)
    wait_for(lambda: len(store.rows) == 5)
    pipeline.stop()


def test_a_spooled_row_the_database_refuses_becomes_a_dead_letter_and_the_rest_commits(tmp_path: Path) -> None:
    """Issue 11: a refused row no longer sets aside the good rows of its batch (the old quarantine)."""
    spool = Spool(tmp_path)
    bad = spool.append(Decoded(rows=[(NOW, 4, 1.0, 0), (NOW, -1, 1.0, 0), (NOW, 6, 1.0, 0)]))
    good = spool.append(Decoded(rows=[(NOW, 5, 1.0, 0)]))
    store, acked = FakeStore(), []
    original = store.record
    dead: list = []

    def record(batch: Batch) -> WriteResult:
        if any(r[1] < 0 for r in batch.decoded.rows):
            raise ValueError("invalid input syntax")  # e.g. a DataError, not an outage
        dead.extend(batch.decoded.rejects)
        return original(batch)

    store.record = record
    pipeline, _ = _pipeline(tmp_path, store, acked)
    pipeline.recover_now()
    assert sorted(store.rows) == [4, 5, 6] and pipeline.counters.db_up
    assert not bad.exists() and not good.exists() and not (tmp_path / "failed").exists()
    [letter] = dead
    assert letter.reason.value == "db_refused" and "ValueError: invalid input syntax" in letter.detail
    assert "point -1" in letter.detail


def test_with_a_tick_the_stages_run_when_nothing_arrives_and_findings_are_recorded(tmp_path: Path) -> None:
    """Silence is a finding: a detector must be asked even when no message comes."""
    store, acked = FakeStore(), []
    calls: list[int] = []
    evaluated: list[int] = []
    seen: list[Batch] = []
    original = store.record
    store.record = lambda batch: (seen.append(batch), original(batch))[1]
    silent = Finding("stale", "stale", SubjectRef("s1", "formation", "gas-01"), Severity.MEDIUM, NOW)

    def tick(batch: Batch) -> None:
        calls.append(len(batch.messages))
        if len(calls) == 3:
            batch.findings.append(silent)

    pipeline, _ = _pipeline(tmp_path, store, acked, evaluate=lambda b: evaluated.append(1), tick=tick, tick_s=0.05)
    pipeline.start()
    wait_for(lambda: seen, message="the tick's finding to be recorded")
    pipeline.stop()
    assert set(calls) == {0} and len(calls) >= 3  # called with empty batches
    assert evaluated == []  # evaluate sees messages only
    assert [b.findings for b in seen] == [[silent]]  # only the batch with a finding was recorded
