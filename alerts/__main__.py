"""Composition root of the alerts worker: ``python -m alerts`` (docker-compose, ``ehs up``)."""

from __future__ import annotations

import logging
import signal
import threading

from alerts.notify import AppriseNotifier
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core.clock import SystemClock
from core.logging import setup_logging
from core.settings import get_settings
from reports.delivery import Delivery
from reports.schedules import Scheduler

_LOGGER = logging.getLogger("alerts")


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url or not settings.mqtt_url:
        raise SystemExit("python -m alerts needs EHS_DATABASE_URL and EHS_MQTT_URL (`ehs up` sets them)")
    worker = AlertsWorker(database_url=settings.database_url, mqtt_url=settings.mqtt_url,
                          secret=settings.secret_key.get_secret_value(), settings=AlertSettings())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    # report schedules: a thread of its own; finished reports go out through the same channel sender
    delivery = Delivery(AppriseNotifier(endpoints=worker.settings.notify_endpoints),
                        settings.secret_key.get_secret_value(), worker.settings.public_url)
    scheduler = Scheduler(settings.database_url, clock=SystemClock(), delivery=delivery)
    scheduler.start()
    _LOGGER.info("alerts worker: MQTT %s; acknowledgements, retries, timeouts, shelving, floods, alarm events; "
                 "notifications %s", worker.interlock.address.redacted(),
                 f"on ({worker.settings.notify_senders} senders)" if worker.notifier else "off")
    stop.wait()
    scheduler.stop()
    worker.stop()


if __name__ == "__main__":
    main()
