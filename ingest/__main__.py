"""Composition root of the ingest process: ``python -m ingest`` (docker-compose, ``ehs up``).

It wires the detectors and the alarm stages into the pipeline (STYLE.md B3): decode -> evaluate (rule engine, in
memory) -> act (interlock commands published now) -> record (readings, alarms, notifications in one
transaction). Rules, alarm configuration and open alarms come from the database, and are reloaded when the
configuration revision changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import psycopg

from alerts import commands as machine
from alerts import config_store, watchdog
from alerts import service as alert_service
from alerts.config import AlertConfig
from alerts.interlock import MqttInterlock
from alerts.notifications.notifier import Notifier
from alerts.settings import AlertSettings
from alerts.stage import AlertStage
from core import mqtt as mq
from core.clock import Clock, SystemClock
from core.db import BackgroundConnection
from core.liveness import Liveness
from core.logging import setup_logging
from core.registry import PlantIndex
from core.settings import get_settings
from detectors import service as rule_service
from detectors.artifacts import DetectorSettings, default_store
from detectors.engine import Engine
from detectors.scoring import ScoringStage
from ingest.leases import SiteLeaseRefused
from ingest.pipeline import Batch
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings

_LOGGER = logging.getLogger("ingest")
#: Exit code of a process that found one of its parts stuck or dead (its supervisor starts it again).
EXIT_STUCK = 3


@dataclass(frozen=True)
class Generation:
    """The detector engine and the alarm configuration of one plant revision: always used together."""

    revision: int
    engine: Engine
    config: AlertConfig


class SafetyStages:
    """The detector and alarm stages of one ingest process."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        secret: str,
        clock: Clock | None = None,
        client_id: str = "ehs-ingest",
        protocol: int | None = None,
        bypass_refresh_s: float = 1.0,
        notify_secret: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.clock = clock or SystemClock()
        self.interlock = MqttInterlock(
            mq.BrokerAddress.parse(mqtt_url),
            secret=secret,
            protocol=protocol,
            client_id=f"{client_id}-interlock-{os.getpid()}",
        )
        self.stage = AlertStage(interlock=self.interlock, clock=self.clock)
        #: What the stage thread uses now; ``_next`` is what a reload built, adopted between two batches. Both
        #: are read and written under ``_swap``, so a reload is never half-applied (plans of revision N+1 on
        #: bindings of revision N) and never lost.
        self.current: Generation | None = None
        self._next: Generation | None = None
        self._swap = threading.Lock()
        self._building = threading.Lock()
        #: The generation each batch was evaluated with, so ``record`` (another thread) uses the same one.
        self._used: OrderedDict[str, Generation] = OrderedDict()
        self._stop = threading.Event()
        self._refresh_s = bypass_refresh_s
        self._refresher = threading.Thread(target=self._refresh_bypasses, name="ingest-bypasses", daemon=True)
        self.liveness: Liveness | None = None
        self.watch_stale_s = 30.0
        #: The standby notifier unseals channel URLs and signs links with the service secret (EHS_SECRET_KEY or the
        #: data directory's), not with the interlock root that signs commands (EHS_INTERLOCK_SECRET).
        self.notify_secret = notify_secret or secret
        #: Run the notifier here while no alerts worker is alive (``watch``); off in tests of other things.
        self.standby_notifier = True
        self.standby: Notifier | None = None
        self._born = time.monotonic()

    @property
    def engine(self) -> Engine | None:
        current = self.current
        return current.engine if current else None

    # --- configuration (housekeeping thread, and once at start) --------------------------------------------

    def on_index(self, index: PlantIndex) -> None:
        """Build the engine and the alarm configuration for this plant revision; both take over together."""
        with self._building:  # one build at a time, so that the revision read last is offered last
            with psycopg.connect(self.database_url, connect_timeout=5) as conn:
                # one snapshot: the rules and the alarm configuration of the same committed revision
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                revision, rules = rule_service.load_rules(conn=conn)
                engine = Engine(rules, index, clock=self.clock, revision=revision)
                config = config_store.load_config(conn=conn, index=index)
                open_alarms = alert_service.open_alarm_conditions(conn=conn)
                self.stage.bypasses = machine.active_bypasses(conn=conn, now=self.clock.now())
                points, span = engine.history_needed()
                history = rule_service.recent_readings(conn=conn, point_ids=points, since=self.clock.now() - span)
            engine.warm_up(history, until={(rule, source): at for rule, source, _, at in open_alarms if at})
            self.offer(Generation(index.revision, engine, config), open_alarms=open_alarms)
            _LOGGER.info(
                "plant revision %d, rules revision %d: %d bindings on %d points, %d warmed from history",
                index.revision,
                revision,
                len(engine.bindings),
                engine.bound_points,
                len(history),
            )

    def offer(self, generation: Generation, *, open_alarms: list | None = None) -> None:
        """Make ``generation`` the next one (the first one at once); an older revision never replaces a newer."""
        with self._swap:
            newest = self._next or self.current
            if newest is not None and generation.revision < newest.revision:
                return
            if self.current is None:
                restored = generation.engine.restore(open_alarms or [])
                self.current = generation
                self.stage.config = generation.config
                _LOGGER.info("%d open alarm(s) taken up", restored)
            else:
                self._next = generation  # the stage thread adopts it between batches

    def _refresh_bypasses(self) -> None:
        """Keep the bypass list fresh even when no finding arrives (a revoked bypass must end at once)."""
        link = BackgroundConnection(self.database_url, purpose="interlock bypass refresh", logger=_LOGGER)
        while not self._stop.wait(self._refresh_s):
            if self.liveness is not None:
                self.liveness.beat("bypasses", progress=True)
            bypasses = link.run(lambda conn: machine.active_bypasses(conn=conn, now=self.clock.now()))
            if bypasses is not None:
                self.stage.bypasses = bypasses
        link.close()

    # --- pipeline stages ------------------------------------------------------------------------------------

    def _adopt(self, batch: Batch) -> Generation | None:
        """The generation for this batch: one built by a reload takes over here, between batches, engine and
        alarm configuration together; the batch keeps it through ``act`` and ``record``."""
        with self._swap:
            new, self._next = self._next, None
            if new is not None:
                if self.current is not None:
                    batch.findings += new.engine.adopt(self.current.engine)
                self.current = new
            generation = self.current
            if generation is not None:
                self.stage.config = generation.config
                self._used[batch.id] = generation
                while len(self._used) > 256:  # batches merged into another one are never looked up
                    self._used.popitem(last=False)
        return generation

    def evaluate(self, batch: Batch) -> None:
        if (generation := self._adopt(batch)) is not None:
            d = batch.decoded
            batch.findings += generation.engine.evaluate(
                d.rows, rejects=d.rejects, statuses=d.statuses, batch_id=batch.id
            )

    def tick(self, batch: Batch) -> None:
        """Nothing arrived: judge silence, offline devices and votes on the clock."""
        if (generation := self._adopt(batch)) is not None:
            batch.findings += generation.engine.tick(batch_id=batch.id)

    def generation_of(self, batch: Batch) -> Generation | None:
        """The generation ``batch`` was evaluated with (the current one for a batch never evaluated)."""
        with self._swap:
            return self._used.get(batch.id) or self.current

    def act(self, batch: Batch) -> None:
        generation = self.generation_of(batch)
        if generation is not None:
            self.stage.config = generation.config  # same thread as evaluate: already this one
        batch.findings = self.stage.act(batch.findings)

    def record(self, conn: psycopg.Connection, batch: Batch) -> None:
        with self._swap:
            generation = self._used.pop(batch.id, None) or self.current
        self.stage.record(
            conn,
            batch.findings,
            batch_id=batch.id,
            now=self.clock.now(),
            config=generation.config if generation else None,
        )

    def watch(self, conn: psycopg.Connection) -> None:
        """Housekeeping: the alerts workers' silence is an alarm raised from here (the other process).

        The notifier lives in the alerts worker, so while no alerts worker is healthy this process runs a standby
        notifier: the silence alarm, and every other one, still reaches people. Deliveries are claimed with
        ``SKIP LOCKED`` and leases, so the standby and a returning worker never send one twice."""
        if time.monotonic() - self._born < self.watch_stale_s:
            return  # at start, the other process may not have beaten yet (e.g. both started together)
        groups = watchdog.watch(
            conn=conn, service_name="alerts", stale_s=self.watch_stale_s, now=self.clock.now(), watcher="ingest"
        )
        silent = bool(groups) and not any(g.healthy for g in groups)
        if silent and self.standby is None and self.standby_notifier:
            _LOGGER.warning("no alerts worker is alive: this ingest process sends notifications until one is back")
            self.standby = Notifier(
                database_url=self.database_url,
                secret=self.notify_secret,
                settings=AlertSettings(),
                clock=self.clock,
                config=lambda c: config_store.load_config(conn=c),
            )
            self.standby.liveness = self.liveness
            self.standby.start()
        elif not silent and self.standby is not None:
            _LOGGER.info("an alerts worker is back: the standby notifier stops")
            standby, self.standby = self.standby, None
            threading.Thread(target=standby.stop, name="standby-notifier-stop", daemon=True).start()

    def start(self) -> None:
        self.interlock.start()
        if self.liveness is not None:  # without its network thread no interlock leaves this process
            self.liveness.watch("interlock", mq.network_probe(self.interlock.client))
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        self._refresher.join(5)
        if self.standby is not None:
            self.standby.stop()
        self.interlock.stop()


def _scoring_stage(database_url: str) -> ScoringStage | None:
    """The anomaly models' stage, loaded once here (never a query on the hot path), or None if switched off."""
    detector_settings = DetectorSettings()
    if not detector_settings.scoring:
        return None
    stage = ScoringStage(store=default_store(detector_settings))
    with psycopg.connect(database_url) as conn:
        stage.load(conn=conn)
    return stage


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url or not settings.mqtt_url:
        raise SystemExit("python -m ingest needs EHS_DATABASE_URL and EHS_MQTT_URL (`ehs up` sets them)")
    ingest_settings = IngestSettings()
    scoring = _scoring_stage(settings.database_url)
    liveness = Liveness(stuck_after=ingest_settings.stuck_s)
    safety = SafetyStages(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        secret=settings.interlock_root,
        client_id=ingest_settings.client_id,
        notify_secret=settings.secret_key.get_secret_value(),
    )
    safety.liveness = liveness
    safety.watch_stale_s = ingest_settings.watch_stale_s

    def evaluate(batch: Batch) -> None:
        safety.evaluate(batch)  # the rules first: they carry the interlocks
        if scoring is not None:
            scoring.evaluate(batch)  # enabled anomaly models add their findings for the alarms

    def record(conn: psycopg.Connection, batch: Batch) -> None:
        if scoring is not None:
            scoring.record(conn, batch)
        safety.record(conn, batch)

    runner = IngestRunner(
        database_url=settings.database_url,
        mqtt_url=settings.mqtt_url,
        spool_dir=settings.spool_dir,
        settings=ingest_settings,
        evaluate=evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=record,
        on_index=safety.on_index,
        liveness=liveness,
        housekeep_extra=safety.watch,
        retention_days=settings.retention_days,
    )
    if ingest_settings.shared_group:
        refuse_stateful_shared_group(ingest_settings, safety)
    try:
        runner.claim_sites()
    except SiteLeaseRefused as exc:
        raise SystemExit(f"ingest refused to start: {exc}") from None
    safety.start()
    _LOGGER.info(
        "ingest: MQTT %s, %s, %d devices, TimescaleDB %s, %d anomaly model(s)",
        runner.address.redacted(),
        f"sites {', '.join(runner.sites)}" if runner.sites else "every site",
        len(runner.index.devices),
        runner.features.describe(),
        len(scoring.bindings) if scoring else 0,
    )
    ok = False
    try:
        ok = runner.run()
    finally:
        if ok:
            safety.stop()
    if not ok:
        # a stuck thread may never return: leave at once, without waiting for it, and let the supervisor
        # (``ehs up``, docker-compose ``restart:``, systemd) start a fresh process; unacknowledged messages come back
        logging.shutdown()
        os._exit(EXIT_STUCK)


def refuse_stateful_shared_group(ingest_settings: IngestSettings, safety: SafetyStages) -> None:
    """A shared subscription spreads one device's messages over several processes at random: every rule (delays,
    hysteresis, rates, votes, silence) would see only part of the data. Allowed only for a process with no rules."""
    _LOGGER.warning("EHS_INGEST_SHARED_GROUP is deprecated: own sites with EHS_INGEST_SITES instead")
    bound = len(safety.engine.bindings) if safety.engine else 0
    if bound:
        raise SystemExit(
            f"ingest refused to start: EHS_INGEST_SHARED_GROUP={ingest_settings.shared_group} would spread each "
            f"device's readings over several processes, and this process evaluates {bound} rule binding(s) that "
            "need all of them (rates, votes, silence, on/off delays). Give each ingest process its own sites with "
            "EHS_INGEST_SITES=site1,site2 (one process per site), and unset EHS_INGEST_SHARED_GROUP."
        )


if __name__ == "__main__":
    main()
