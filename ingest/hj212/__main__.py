"""``python -m ingest.hj212``: the HJ 212 listener for the plant's data loggers (``ehs up`` starts it when
``EHS_HJ212_PORT`` is set)."""

from __future__ import annotations

import asyncio
import logging
import signal

from core.logging import setup_logging
from core.settings import get_settings
from ingest.hj212.listener import Hj212Listener
from ingest.hj212.relay import MqttRelay
from ingest.hj212.settings import Hj212Settings

_LOGGER = logging.getLogger("ingest.hj212")


async def _run() -> None:
    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("python -m ingest.hj212 needs EHS_DATABASE_URL (`ehs up` sets it)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    hj212 = Hj212Settings()
    relay = None
    if hj212.relay and settings.mqtt_url:
        relay = MqttRelay(settings.mqtt_url)
        await asyncio.to_thread(relay.start)
    elif hj212.relay:
        _LOGGER.warning("EHS_MQTT_URL is unset: HJ 212 readings are stored but reach no rule or detector")
    listener = Hj212Listener(database_url=settings.database_url, settings=hj212, relay=relay)
    try:
        await listener.serve_forever(stop)
    finally:
        if relay is not None:
            relay.stop()


def main() -> None:
    setup_logging(get_settings().log_level)
    asyncio.run(_run())


if __name__ == "__main__":
    main()
