"""Composition root of the ingest process: ``python -m ingest`` (docker-compose, ``ehs up``)."""

from __future__ import annotations

import logging

from core.logging import setup_logging
from core.settings import get_settings
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings

_LOGGER = logging.getLogger("ingest")


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url or not settings.mqtt_url:
        raise SystemExit("python -m ingest needs EHS_DATABASE_URL and EHS_MQTT_URL (`ehs up` sets them)")
    runner = IngestRunner(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          spool_dir=settings.spool_dir, settings=IngestSettings())
    _LOGGER.info("ingest: MQTT %s, %d devices, TimescaleDB %s", runner.address.redacted(),
                 len(runner.index.devices), "on" if runner.timescale else "off")
    runner.run()


if __name__ == "__main__":
    main()
