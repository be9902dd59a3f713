"""Isolation by message against a real PostgreSQL (issue 11, items 1 and 4): a message that the decoder, a
detector or the database refuses costs only itself; good readings are never spooled, set aside or lost because
of a bad neighbour; an unreadable spool file is set aside with a system alarm; a spool append that fails leaves
the messages unacknowledged and is tried again, the record thread alive.

The pipeline here is ingest's own (decoder, record, detectors and alarm stages of ``python -m ingest``), fed
from its queue rather than by the MQTT subscriber (test_hostile_e2e.py goes through the broker)."""

from __future__ import annotations

import errno
import logging
from datetime import timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from ingest.decoders import Decoded
from ingest.pipeline import SPOOL_RULE, Pipeline
from ingest.spool import Spool
from tests.ingest.stack import T0, Stack, ts_ms
from tests.support import count, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]


def _idle(stack: Stack, n: int) -> None:
    wait_for(lambda: len(stack.acked) >= n, message=f"{n} messages acknowledged")
    assert stack.pipeline.running and all(t.is_alive() for t in stack.pipeline._threads)


def test_regression_year_one_no_longer_kills_the_stage_thread(stack: Stack) -> None:
    """The issue's reproduction: this message killed the stage thread (OverflowError in parse_time)."""
    stack.pipeline.start()
    bad = stack.message("gas-01", {"ts": "0001-01-01T00:00:00+08:00", "values": {"h2_ppm": 25}})
    goods = [stack.message("gas-01", {"ts": ts_ms(i), "values": {"h2_ppm": float(i)}}) for i in range(5)]
    stack.put(bad, *goods)
    _idle(stack, 6)
    assert len(stack.readings("gas-01", "h2_ppm")) == 5
    [(reason, topic, payload, detail)] = stack.dead_letters()
    assert reason == "bad_time" and bytes(payload) == bad.payload and "out of range" in detail


def test_regression_a_nul_in_a_key_no_longer_makes_the_database_refuse_the_batch(stack: Stack) -> None:
    """A NUL in an unknown key was copied into the dead letter's detail; PostgreSQL refused the merged batch and
    ingest spooled (then set aside) the good readings of every device with it."""
    nul = stack.message("gas-01", b'{"ts": %d, "values": {"h2_ppm\\u0000": 1, "h2_ppm": 3}}' % ts_ms(100))
    goods = [stack.message("gas-02", {"ts": ts_ms(i), "values": {"co_ppm": 1.0}}) for i in range(5)]
    stack.put(nul, *goods)  # queued before the start: decoded and recorded as one batch
    stack.pipeline.start()
    _idle(stack, 6)
    assert len(stack.readings("gas-02", "co_ppm")) == 5 and list(stack.readings("gas-01", "h2_ppm").values()) == [3]
    [(reason, _topic, _payload, detail)] = stack.dead_letters()
    assert reason == "unknown_point" and detail == "h2_ppm\\x00"
    counters = stack.pipeline.counters
    assert (counters.spooled_batches, counters.isolated_batches, counters.db_up) == (0, 0, True)


def test_a_row_the_database_refuses_is_found_and_everything_else_commits(stack: Stack) -> None:
    """A real refusal by PostgreSQL (a trigger raising a data exception on one value): the batch is split until
    the refused reading is found; the rest of its message and every other message commit."""
    with psycopg.connect(stack.db, autocommit=True) as conn:
        conn.execute("""CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.value = 666.25 THEN RAISE EXCEPTION 'value 666.25 refused' USING ERRCODE = '22023';
            END IF; RETURN NEW; END $$""")
        conn.execute("CREATE TRIGGER refuse_666 BEFORE INSERT ON reading FOR EACH ROW EXECUTE FUNCTION refuse_666()")
    culprit = stack.message(
        "gas-01",
        [
            {"ts": ts_ms(1), "values": {"h2_ppm": 1.0, "co_ppm": 2.0}},
            {"ts": ts_ms(2), "values": {"h2_ppm": 666.25}},
            {"ts": ts_ms(3), "values": {"h2_ppm": 3.0}},
        ],
    )
    goods = [stack.message("gas-02", {"ts": ts_ms(i), "values": {"co_ppm": float(i)}}) for i in range(20)]
    stack.put(*goods[:10], culprit, *goods[10:])
    stack.pipeline.start()
    _idle(stack, 21)
    assert len(stack.readings("gas-02", "co_ppm")) == 20
    assert sorted(stack.readings("gas-01", "h2_ppm").values()) == [1.0, 3.0]
    assert list(stack.readings("gas-01", "co_ppm").values()) == [2.0]
    [(reason, topic, payload, detail)] = stack.dead_letters()
    assert reason == "db_refused" and topic == culprit.topic and bytes(payload) == culprit.payload
    assert "InvalidParameterValue: value 666.25 refused" in detail and "refused: reading of point" in detail
    counters = stack.pipeline.counters
    assert counters.isolated_batches == 1 and counters.refused == 1 and counters.spooled_batches == 0


def test_a_detector_that_raises_costs_only_its_message(stack: Stack) -> None:
    """A detector bug on one message: that message is a ``detector_error`` dead letter (its readings stored), the
    other messages of the batch are judged, so the h2 alarm of another message is still raised."""
    evaluate = stack.pipeline.evaluate

    def buggy(batch) -> None:
        if any(r[2] == 777.0 for r in batch.decoded.rows):
            raise KeyError("detector bug")
        evaluate(batch)

    stack.pipeline.evaluate = buggy
    poison = stack.message("gas-02", {"co_ppm": 777.0})
    alarm = stack.message("gas-01", {"h2_ppm": 900.0})
    stack.put(stack.message("gas-02", {"co_ppm": 1.0}), poison, alarm)
    stack.pipeline.start()
    _idle(stack, 3)
    [(reason, topic, payload, detail)] = stack.dead_letters()
    assert (reason, topic, bytes(payload)) == ("detector_error", poison.topic, poison.payload)
    assert detail == "KeyError: 'detector bug'"
    assert sorted(stack.readings("gas-02", "co_ppm").values()) == [1.0, 777.0]
    wait_for(
        lambda: (
            count(
                stack.db,
                "SELECT count(*) FROM alarm WHERE rule = 'gas.h2' AND source LIKE %s",
                (f"{stack.site}/formation/gas-01%",),
            )
            == 1
        ),
        message="the h2 alarm of the other message",
    )
    assert stack.pipeline.counters.detector_errors == 1


def _spool_files(stack: Stack) -> dict[str, Path]:
    spool = Spool(stack.spool_dir)
    point = stack.runner.index.devices[(stack.site, "gas-01")].points["h2_ppm"].id
    row = lambda s: (T0 + timedelta(seconds=s), point, float(s), 0)  # noqa: E731
    files = {"good": spool.append(Decoded(rows=[row(1)]))}
    truncated = spool.append(Decoded(rows=[row(2)]))
    truncated.write_bytes(truncated.read_bytes()[:-7])
    flipped = spool.append(Decoded(rows=[row(3)]))
    data = bytearray(flipped.read_bytes())
    data[-10] ^= 0x20
    flipped.write_bytes(bytes(data))
    future = spool.append(Decoded(rows=[row(4)]))
    future.write_bytes(future.read_bytes().replace(b"EHS-SPOOL 2 ", b"EHS-SPOOL 9 ", 1))
    old = spool.directory / f"{spool._next:012d}.batch"  # version 1: the bare JSON of earlier releases
    old.write_bytes(orjson.dumps({"rows": [row(5)], "rejects": [], "statuses": []}))
    (spool.directory / "copy of 7.batch").write_bytes(b"whatever")
    files.update(truncated=truncated, flipped=flipped, future=future, old=old)
    return files


def test_unreadable_spool_files_are_set_aside_with_a_system_alarm_and_the_rest_replays(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    files = _spool_files(stack)
    pipeline = Pipeline(
        source=stack.source,
        decode=stack.runner.decoder.decode_batch,
        record=stack.runner._record,
        ack=stack.acked.extend,
        spool=Spool(stack.spool_dir),
        probe=stack.runner._probe,
    )
    with caplog.at_level(logging.ERROR, logger="ingest.spool"):
        pipeline.recover_now()
    assert pipeline.counters.db_up and pipeline.counters.spool_quarantined == 4
    assert sorted(stack.readings("gas-01", "h2_ppm").values()) == [1.0, 5.0]  # the good and the old file
    failed = stack.spool_dir / "failed"
    assert sorted(p.name for p in failed.glob("*.batch")) == sorted(
        [files["truncated"].name, files["flipped"].name, files["future"].name, "copy of 7.batch"]
    )
    reasons = {p.name: p.read_text() for p in failed.glob("*.reason")}
    assert "checksum" in reasons[files["truncated"].name + ".reason"]
    assert "version '9'" in reasons[files["future"].name + ".reason"]
    assert not list(stack.spool_dir.glob("*.batch"))
    assert sum("cannot be replayed" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR) == 4
    with psycopg.connect(stack.db) as conn:
        alarm = conn.execute("SELECT state, priority, source FROM alarm WHERE rule = %s", (SPOOL_RULE,)).fetchone()
    assert alarm is not None and alarm[0] == "cleared_unacked" and alarm[2] == "_service/ingest/spool"


def test_a_failed_spool_append_keeps_the_messages_unacknowledged_and_is_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Database down and disk full: nothing is acknowledged, the record thread lives and tries again; disk freed:
    spooled and acknowledged; database back: replayed."""
    real_url = stack.runner.database_url
    stack.runner.database_url = "postgresql://postgres@127.0.0.1:9/unreachable"  # nothing listens on port 9
    if stack.runner._conn is not None:
        stack.runner._conn.close()

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ingest.spool.os.fsync", disk_full)
    stack.pipeline.start()
    stack.put(*[stack.message("gas-02", {"ts": ts_ms(i), "values": {"co_ppm": float(i)}}) for i in range(10)])
    wait_for(lambda: stack.pipeline.counters.spool_append_failures >= 3, message="appends tried again")
    assert stack.acked == [] and all(t.is_alive() for t in stack.pipeline._threads)
    assert not list(stack.spool_dir.glob("*.tmp")) and not list(stack.spool_dir.glob("*.batch"))
    monkeypatch.undo()  # disk space again
    wait_for(lambda: len(stack.acked) == 10, message="spooled and acknowledged")
    assert stack.pipeline.counters.spooled_readings == 10
    stack.runner.database_url = real_url  # database back
    wait_for(lambda: len(stack.readings("gas-02", "co_ppm")) == 10, message="the spool replayed")
    wait_for(lambda: stack.pipeline.counters.db_up, message="ingest back to the database")


def test_a_database_lost_while_splitting_spools_the_rest_and_the_replay_finishes_the_job(stack: Stack) -> None:
    """The database refuses a batch for its data, then goes away while the batch is being split: what is not
    committed yet is spooled (and acknowledged); on replay the refused row is found again and kept as a dead
    letter, everything else commits once."""
    with psycopg.connect(stack.db, autocommit=True) as conn:
        conn.execute("""CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.value = 666.25 THEN RAISE EXCEPTION 'value 666.25 refused' USING ERRCODE = '22023';
            END IF; RETURN NEW; END $$""")
        conn.execute("CREATE TRIGGER refuse_666 BEFORE INSERT ON reading FOR EACH ROW EXECUTE FUNCTION refuse_666()")
    real_url, record, calls = stack.runner.database_url, stack.pipeline.record, []

    def record_then_lose_the_database(batch):
        calls.append(len(batch.decoded.rows))
        if len(calls) == 2:  # the first half of the split: the database goes away now
            stack.runner.database_url = "postgresql://postgres@127.0.0.1:9/unreachable"
            stack.runner._conn.close()
        return record(batch)

    stack.pipeline.record = record_then_lose_the_database
    messages = [
        stack.message("gas-02", {"ts": ts_ms(i), "values": {"co_ppm": 666.25 if i == 3 else float(i)}})
        for i in range(8)
    ]
    stack.put(*messages)
    stack.pipeline.start()
    wait_for(lambda: len(stack.acked) == 8, message="spooled and acknowledged")
    assert stack.pipeline.counters.spooled_batches == 1 and list(stack.spool_dir.glob("*.batch"))
    stack.pipeline.record = record
    stack.runner.database_url = real_url
    wait_for(
        lambda: stack.pipeline.counters.db_up and not list(stack.spool_dir.glob("*.batch")),
        message="the spool replayed",
    )
    assert sorted(stack.readings("gas-02", "co_ppm").values()) == [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0]
    [(reason, topic, _payload, detail)] = stack.dead_letters()
    assert reason == "db_refused" and "value 666.25 refused" in detail and topic == "(spool)"
