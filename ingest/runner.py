"""Wire one ingest process: database connection, plant index, decoder, subscriber, pipeline, heartbeat.

Detector and interlock stages are passed in by the composition root (``ingest/__main__.py``), so this module
still imports only ``core`` and ``ingest``.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from core import mqtt as mq
from core import storage, topics
from core.clock import Clock, SystemClock
from core.db import BackgroundConnection, connect, heartbeat, last_heartbeat, sign_off
from core.errors import StoreUnavailable
from core.liveness import Liveness
from core.registry import PlantIndex, current_revision, load_index, only_sites
from core.timeseries import LATE_AFTER, refresh_rollups
from ingest import leases
from ingest.deadletters import prune_dead_letters
from ingest.decoders import Decoder, Limits, RawMessage
from ingest.pipeline import Batch, Pipeline
from ingest.settings import IngestSettings
from ingest.spool import Spool
from ingest.subscriber import Subscriber
from ingest.writer import WriteResult, announce, write_batch

_LOGGER = logging.getLogger(__name__)

#: Partitions ahead and retention are looked after this often (and at start).
MAINTAIN_EVERY = timedelta(minutes=10)
#: Extra work inside the batch transaction (alarms from findings), injected by the composition root.
RecordExtra = Callable[[psycopg.Connection, Batch], None]
#: Extra periodic work of the housekeeping thread (watching the alerts worker's heartbeat), ditto.
HousekeepExtra = Callable[[psycopg.Connection], None]


class IngestRunner:
    """Everything one ingest process runs; ``start``/``stop`` for tests, ``run`` for ``python -m ingest``."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        spool_dir: Path,
        settings: IngestSettings,
        protocol: int | None = None,
        evaluate: Callable[[Batch], None] | None = None,
        act: Callable[[Batch], None] | None = None,
        tick: Callable[[Batch], None] | None = None,
        record_extra: RecordExtra | None = None,
        on_index: Callable[[PlantIndex], None] | None = None,
        clock: Clock | None = None,
        rollups: bool = True,
        liveness: Liveness | None = None,
        housekeep_extra: HousekeepExtra | None = None,
        retention_days: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings
        self.clock = clock or SystemClock()
        self.address = mq.BrokerAddress.parse(mqtt_url)
        self.protocol = protocol or mq.detect_protocol(self.address)
        self.record_extra = record_extra
        self.on_index = on_index
        self.rollups = rollups
        self.housekeep_extra = housekeep_extra
        self.liveness = liveness or Liveness(stuck_after=settings.stuck_s)
        self.sites = settings.sites
        self._lease_lost = False
        self.retention_days = retention_days
        self._maintained_at: datetime | None = None
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = datetime.now(UTC)
        self._conn: psycopg.Connection | None = None
        with connect(database_url) as conn:
            self.index = only_sites(load_index(conn), self.sites)
            self.features = storage.detect(conn)
        self.timescale = self.features.timescaledb is not None
        if on_index:
            on_index(self.index)
        self.decoder = Decoder(
            self.index,
            Limits(
                max_payload_bytes=settings.max_payload_bytes,
                max_future=timedelta(seconds=settings.max_future_s),
                max_age=timedelta(days=settings.max_age_days),
                sender_property=settings.sender_property,
                relay_senders=frozenset(settings.relay_senders),
            ),
        )
        self.queue: queue.Queue[RawMessage] = queue.Queue(maxsize=max(settings.queue_size, settings.receive_maximum))
        self.subscriber = Subscriber(
            self.address,
            self.queue,
            subscriptions=topics.subscriptions(self.sites),
            client_id=settings.client_id,
            protocol=self.protocol,
            receive_maximum=settings.receive_maximum,
            session_expiry_s=settings.session_expiry_s,
            shared_group=settings.shared_group,
            clock=self.clock,
        )
        self.pipeline = Pipeline(
            source=self.queue,
            decode=self.decoder.decode_batch,
            record=self._record,
            ack=self.subscriber.ack,
            spool=Spool(spool_dir),
            evaluate=evaluate,
            act=act,
            probe=self._probe,
            batch_max_messages=settings.batch_max_messages,
            batch_max_readings=settings.batch_max_readings,
            retry_max_s=settings.db_retry_max_s,
            tick=tick,
            tick_s=settings.tick_s,
            liveness=self.liveness,
        )
        self._stop = threading.Event()
        self._next_prune = 0.0
        self._housekeeper = threading.Thread(target=self._housekeeping, name="ingest-housekeeping", daemon=True)

    # --- database -------------------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            # autocommit, so that each ``transaction()`` block is a real BEGIN/COMMIT and a stray statement
            # (the recovery probe) cannot leave a transaction open that would turn later blocks into savepoints
            self._conn = connect(self.database_url, connect_timeout=5, autocommit=True)
        return self._conn

    def _record(self, batch: Batch) -> WriteResult:
        late_before = self.clock.now() - LATE_AFTER  # both paths: late readings are refreshed explicitly
        try:
            conn = self._connection()
            with conn.transaction():
                result = write_batch(conn, batch.decoded, late_before=late_before)
                if self.record_extra is not None:
                    self.record_extra(conn, batch)
                if self.settings.notify_readings and result.written:
                    announce(conn, batch.id, batch.decoded.rows)
            return result
        except psycopg.OperationalError as exc:
            if self._conn is not None:
                self._conn.close()
            raise StoreUnavailable(str(exc).strip()) from exc

    def _probe(self) -> None:
        try:
            self._connection().execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if self._conn is not None:
                self._conn.close()
            raise StoreUnavailable(str(exc).strip()) from exc

    # --- housekeeping: heartbeat, configuration reload, rollups -------------------------------------------------

    def counters(self) -> dict[str, Any]:
        return self.pipeline.counters.snapshot(
            queue_depth=self.pipeline.queue_depth(),
            spool_pending=len(self.pipeline.spool),
            mqtt_connected=self.subscriber.connected.is_set(),
            mqtt_disconnected_s=self.subscriber.disconnected_s(),
            config_revision=self.index.revision,
            sites=self.sites,
            group=",".join(self.sites or ["*"]),
            liveness=self.liveness.report(),
            stuck=self.failing(),
        )

    def failing(self) -> list[str]:
        """The parts that are stuck or dead (``lease``: another process took this one's sites)."""
        return self.liveness.stuck() + (["lease"] if self._lease_lost else [])

    def failures(self) -> list[str]:
        """``failing()`` in words, for the log."""
        return self.liveness.failures() + (["lease (site lease lost)"] if self._lease_lost else [])

    def _housekeeping(self) -> None:
        link = BackgroundConnection(self.database_url, purpose="housekeeping", logger=_LOGGER)
        # a rollup refresh after a long outage may take minutes: housekeeping is stuck only after much longer (its
        # silence shows sooner anyway: the heartbeat goes stale and the alerts worker raises service.silent)
        stuck_after = max(10 * self.settings.stuck_s, 3 * self.settings.heartbeat_s)
        while True:
            self.liveness.beat("housekeeping", progress=True, stuck_after=stuck_after)
            link.run(self._housekeep)
            if self._stop.wait(self.settings.heartbeat_s):
                break
        link.close()

    def _housekeep(self, conn: psycopg.Connection) -> None:
        """Reload the plant index on a new configuration revision, report the counters, refresh the rollups
        (late readings included, on both paths), every ``MAINTAIN_EVERY`` keep the partitions and retention, and
        apply the dead-letter retention (ingest.deadletters)."""
        if current_revision(conn) != self.index.revision:
            self.index = only_sites(load_index(conn), self.sites)
            self.decoder.index = self.index
            if self.on_index:
                self.on_index(self.index)
            _LOGGER.info("plant configuration revision %d loaded", self.index.revision)
        if not self.settings.shared_group and not leases.renew(
            conn, owner=self.settings.client_id, instance=self.instance, sites=self.sites, ttl=self._lease_ttl
        ):
            if not self._lease_lost:
                _LOGGER.error("ingest %s lost its site lease to another process", self.settings.client_id)
            self._lease_lost = True
        heartbeat(conn, service="ingest", instance=self.instance, started_at=self.started_at, counters=self.counters())
        if self.housekeep_extra is not None:
            try:
                self.housekeep_extra(conn)
            except psycopg.Error:
                raise
            except Exception:  # a bug in the watch must not stop the heartbeat
                _LOGGER.exception("housekeeping extra step failed")
        now = self.clock.now()
        if self.rollups:
            refresh_rollups(conn, now=now, retention_days=self.retention_days)
        if self._maintained_at is None or now - self._maintained_at >= MAINTAIN_EVERY:
            done = storage.maintain(conn, now=now, retention_days=self.retention_days, features=self.features)
            if done["created"] or done["dropped"]:
                _LOGGER.info(
                    "readings storage: created %s, dropped %s", done["created"] or "none", done["dropped"] or "none"
                )
            self._maintained_at = now
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.settings.dead_letter_prune_s
            with conn.transaction():
                pruned = prune_dead_letters(
                    conn,
                    now=self.clock.now(),
                    keep_days=self.settings.dead_letter_days,
                    per_topic_day=self.settings.dead_letter_per_topic_day,
                    max_rows=self.settings.dead_letter_max_rows,
                )
            if pruned.topic_cap or pruned.total_cap:
                _LOGGER.warning(
                    "dead letters over their caps removed: %d (per topic and day), %d (in all); "
                    "counted in dead_letter_pruned",
                    pruned.topic_cap,
                    pruned.total_cap,
                )

    # --- lifecycle --------------------------------------------------------------------------------------------

    @property
    def _lease_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_s)

    def claim_sites(self) -> None:
        """Register the sites this process owns; ``leases.SiteLeaseRefused`` if another process owns one."""
        if self.settings.shared_group:
            return  # members of a shared group share their sites (allowed only without rules: __main__)
        with psycopg.connect(self.database_url, connect_timeout=5, autocommit=True) as conn:
            leases.claim(
                conn, owner=self.settings.client_id, instance=self.instance, sites=self.sites, ttl=self._lease_ttl
            )

    def start(self) -> None:
        self.claim_sites()
        self.liveness.watch("mqtt", self.subscriber.network_alive)
        self.pipeline.recover_now()
        self.pipeline.start()
        self.subscriber.start()
        self._housekeeper.start()

    def stop(self) -> None:
        """Finish and acknowledge the batches in hand, then disconnect (what is still queued is redelivered)."""
        self.liveness.forget_all()  # the threads end now on purpose
        self._stop.set()
        self.pipeline.stop()
        self.subscriber.stop()
        self._housekeeper.join(10)
        if self._conn is not None:
            self._conn.close()
        self._sign_off()

    def _sign_off(self) -> None:
        """A clean stop gives the sites back and removes this process's heartbeat (only a silent death leaves a
        heartbeat to go stale, which the alerts worker reports as an alarm)."""

        def release(conn: psycopg.Connection) -> None:
            if not self.settings.shared_group:
                leases.release(conn, owner=self.settings.client_id)

        sign_off(self.database_url, service="ingest", instance=self.instance, before=release)

    def report_failure(self, failures: list[str]) -> None:
        """Write a last heartbeat naming the stuck parts (best effort), so the other process says which part."""
        last_heartbeat(
            self.database_url,
            service="ingest",
            instance=self.instance,
            started_at=self.started_at,
            counters={**self.counters(), "exiting": failures},
        )

    def run(self) -> bool:
        """Run until SIGTERM or Ctrl-C (True), or until a part is stuck or dead (False: exit non-zero)."""
        import signal

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        while not stop.wait(1.0):
            if failures := self.failures():
                _LOGGER.critical(
                    "ingest is stuck: %s; exiting so that the supervisor starts it again", ", ".join(failures)
                )
                self.report_failure(failures)
                return False
        self.stop()
        return True
