"""Run the plant simulator: ``python -m simulator --config examples/demo-plant.yaml`` (``ehs simulate``)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from core.logging import setup_logging
from core.plant import load_plant
from core.settings import get_settings
from simulator.runner import SimulatorRunner

_LOGGER = logging.getLogger("simulator")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--config", default="examples/demo-plant.yaml")
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="multiply every device's publishing interval (0.5 = twice as often)",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="play incidents this many times faster")
    parser.add_argument("--dropout", type=float, default=0.002, help="probability that a sample is lost")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.mqtt_url:
        raise SystemExit("python -m simulator needs EHS_MQTT_URL (`ehs up --demo` sets it)")
    runner = SimulatorRunner(
        load_plant(args.config),
        settings.mqtt_url,
        seed=args.seed,
        rate_scale=args.rate_scale,
        speed=args.speed,
        dropout=args.dropout,
        secret=settings.interlock_root,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    _LOGGER.info("simulating %d devices", len(runner.sim.devices))
    stop.wait()
    runner.stop()


if __name__ == "__main__":
    main()
