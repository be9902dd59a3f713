"""Composition root of the ingest process: ``python -m ingest`` (docker-compose, ``ehs up``)."""

from __future__ import annotations

import logging

import psycopg

from core.logging import setup_logging
from core.settings import get_settings
from detectors.artifacts import DetectorSettings, default_store
from detectors.scoring import ScoringStage
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings

_LOGGER = logging.getLogger("ingest")


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
    stage = _scoring_stage(settings.database_url)
    runner = IngestRunner(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          spool_dir=settings.spool_dir, settings=IngestSettings(),
                          evaluate=stage.evaluate if stage else None,
                          record_extra=stage.record if stage else None)
    _LOGGER.info("ingest: MQTT %s, %d devices, TimescaleDB %s, %d anomaly model(s)", runner.address.redacted(),
                 len(runner.index.devices), "on" if runner.timescale else "off",
                 len(stage.bindings) if stage else 0)
    runner.run()


if __name__ == "__main__":
    main()
