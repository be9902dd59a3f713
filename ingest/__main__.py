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

import psycopg

from alerts import dispatch
from alerts import service as alert_service
from alerts.interlock import MqttInterlock
from alerts.stage import AlertStage
from core import mqtt as mq
from core.clock import Clock, SystemClock
from core.db import BackgroundConnection
from core.logging import setup_logging
from core.registry import PlantIndex
from core.settings import get_settings
from detectors import service as rule_service
from detectors.artifacts import DetectorSettings, default_store
from detectors.engine import Engine
from detectors.scoring import ScoringStage
from ingest.pipeline import Batch
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings

_LOGGER = logging.getLogger("ingest")


class SafetyStages:
    """The detector and alarm stages of one ingest process."""

    def __init__(self, *, database_url: str, mqtt_url: str, secret: str, clock: Clock | None = None,
                 client_id: str = "ehs-ingest", protocol: int | None = None, bypass_refresh_s: float = 1.0) -> None:
        self.database_url = database_url
        self.clock = clock or SystemClock()
        self.interlock = MqttInterlock(mq.BrokerAddress.parse(mqtt_url), secret=secret, protocol=protocol,
                                       client_id=f"{client_id}-interlock-{os.getpid()}")
        self.stage = AlertStage(interlock=self.interlock, clock=self.clock)
        self.engine: Engine | None = None
        self._next: Engine | None = None
        self._stop = threading.Event()
        self._refresh_s = bypass_refresh_s
        self._refresher = threading.Thread(target=self._refresh_bypasses, name="ingest-bypasses", daemon=True)

    # --- configuration (housekeeping thread, and once at start) --------------------------------------------

    def on_index(self, index: PlantIndex) -> None:
        """Build the engine and the alarm configuration for this plant revision."""
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            revision, rules = rule_service.load_rules(conn=conn)
            engine = Engine(rules, index, clock=self.clock, revision=revision)
            config = alert_service.load_config(conn=conn, index=index)
            open_alarms = alert_service.open_alarm_conditions(conn=conn)
            self.stage.bypasses = dispatch.active_bypasses(conn=conn, now=self.clock.now())
            points, span = engine.history_needed()
            history = rule_service.recent_readings(conn=conn, point_ids=points, since=self.clock.now() - span)
        engine.warm_up(history, until={(rule, source): at for rule, source, _, at in open_alarms if at})
        self.stage.config = config
        if self.engine is None:
            restored = engine.restore(open_alarms)
            self.engine = engine
            _LOGGER.info("rules revision %d: %d bindings on %d points, %d warmed from history; %d open alarm(s) "
                         "taken up", revision, len(engine.bindings), engine.bound_points, len(history), restored)
        else:
            self._next = engine                     # the stage thread adopts it between batches
            _LOGGER.info("rules revision %d loaded: %d bindings", revision, len(engine.bindings))

    def _refresh_bypasses(self) -> None:
        """Keep the bypass list fresh even when no finding arrives (a revoked bypass must end at once)."""
        link = BackgroundConnection(self.database_url, purpose="interlock bypass refresh", logger=_LOGGER)
        while not self._stop.wait(self._refresh_s):
            bypasses = link.run(lambda conn: dispatch.active_bypasses(conn=conn, now=self.clock.now()))
            if bypasses is not None:
                self.stage.bypasses = bypasses
        link.close()

    # --- pipeline stages ------------------------------------------------------------------------------------

    def _current(self, batch: Batch) -> Engine | None:
        """The engine to use now: a new one from a configuration change takes over between batches."""
        if self._next is not None:
            new, self._next = self._next, None
            batch.findings += new.adopt(self.engine) if self.engine else []
            self.engine = new
        return self.engine

    def evaluate(self, batch: Batch) -> None:
        if (engine := self._current(batch)) is not None:
            d = batch.decoded
            batch.findings += engine.evaluate(d.rows, rejects=d.rejects, statuses=d.statuses, batch_id=batch.id)

    def tick(self, batch: Batch) -> None:
        """Nothing arrived: judge silence, offline devices and votes on the clock."""
        if (engine := self._current(batch)) is not None:
            batch.findings += engine.tick(batch_id=batch.id)

    def act(self, batch: Batch) -> None:
        batch.findings = self.stage.act(batch.findings)

    def record(self, conn: psycopg.Connection, batch: Batch) -> None:
        self.stage.record(conn, batch.findings, batch_id=batch.id, now=self.clock.now())

    def start(self) -> None:
        self.interlock.start()
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        self._refresher.join(5)
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
    safety = SafetyStages(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          secret=settings.secret_key.get_secret_value(), client_id=ingest_settings.client_id)

    def evaluate(batch: Batch) -> None:
        safety.evaluate(batch)                  # the rules first: they carry the interlocks
        if scoring is not None:
            scoring.evaluate(batch)             # enabled anomaly models add their findings for the alarms

    def record(conn: psycopg.Connection, batch: Batch) -> None:
        if scoring is not None:
            scoring.record(conn, batch)
        safety.record(conn, batch)

    runner = IngestRunner(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          spool_dir=settings.spool_dir, settings=ingest_settings, evaluate=evaluate,
                          act=safety.act, tick=safety.tick, record_extra=record, on_index=safety.on_index,
                          retention_days=settings.retention_days)
    safety.start()
    _LOGGER.info("ingest: MQTT %s, %d devices, TimescaleDB %s, %d anomaly model(s)", runner.address.redacted(),
                 len(runner.index.devices), runner.features.describe(),
                 len(scoring.bindings) if scoring else 0)
    try:
        runner.run()
    finally:
        safety.stop()


if __name__ == "__main__":
    main()
