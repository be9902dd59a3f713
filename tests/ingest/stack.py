"""Ingest's own pipeline (decoder, record, detectors and alarm stages of ``python -m ingest``) on a real
PostgreSQL, fed from its queue instead of the MQTT subscriber: for the isolation and fuzzing tests (issue 11)."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from core import mqtt as mq
from core.clock import SystemClock
from ingest.__main__ import SafetyStages
from ingest.decoders import RawMessage
from ingest.pipeline import Pipeline
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from ingest.spool import Spool
from tests.alerts.helpers import apply

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class Stack:
    db: str
    site: str
    runner: IngestRunner
    safety: SafetyStages
    pipeline: Pipeline
    source: queue.Queue
    acked: list[RawMessage]
    spool_dir: Path
    mid: int = 0
    last: datetime = datetime.min.replace(tzinfo=UTC)

    def message(self, device: str, payload: bytes | object, channel: str = "telemetry") -> RawMessage:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return self.raw(f"ehs/v1/{self.site}/{device}/{channel}", body)

    def raw(self, topic: str, payload: bytes) -> RawMessage:
        """A message as the subscriber makes it; arrival times strictly increase (they identify messages)."""
        self.mid += 1
        self.last = max(datetime.now(UTC), self.last + timedelta(microseconds=1))
        return RawMessage(topic, payload, 1, False, self.last, self.mid)

    def put(self, *messages: RawMessage) -> None:
        for m in messages:
            self.source.put(m)

    def readings(self, device: str, key: str) -> dict[datetime, float | None]:
        with psycopg.connect(self.db) as conn:
            return dict(
                conn.execute(
                    "SELECT r.time, r.value FROM reading r JOIN point p ON p.id = r.point_id JOIN device d "
                    "ON d.id = p.device_id JOIN site s ON s.id = d.site_id WHERE s.code = %s AND d.code = %s "
                    "AND p.key = %s",
                    (self.site, device, key),
                ).fetchall()
            )

    def dead_letters(self) -> list[tuple]:
        with psycopg.connect(self.db) as conn:
            return conn.execute("SELECT reason, topic, payload, detail FROM dead_letter ORDER BY id").fetchall()


def ts_ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def make_stack(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[Stack]:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    tag = uuid.uuid4().hex[:8]
    safety = SafetyStages(
        database_url=database_url,
        mqtt_url=broker_url,
        secret="test-secret",
        client_id=f"ingest-{tag}",
        protocol=mq.MQTTv5,
    )
    runner = IngestRunner(
        database_url=database_url,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"ingest-{tag}"),
        protocol=mq.MQTTv5,
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
        clock=SystemClock(),
    )
    safety.start()
    acked: list[RawMessage] = []
    source: queue.Queue = queue.Queue(maxsize=10_000)
    pipeline = Pipeline(
        source=source,
        decode=runner.decoder.decode_batch,
        record=runner._record,
        ack=acked.extend,
        spool=Spool(tmp_path / "spool"),
        evaluate=safety.evaluate,
        act=safety.act,
        probe=runner._probe,
        retry_max_s=0.3,
    )
    pipeline._retry_delay = 0.1
    stack = Stack(database_url, site, runner, safety, pipeline, source, acked, tmp_path / "spool")
    yield stack
    pipeline.stop()
    safety.stop()
    if runner._conn is not None:
        runner._conn.close()
