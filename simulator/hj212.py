"""Analyzers behind HJ 212 data loggers: ``python -m simulator.hj212 --config PLANT --port P``.

Every device of the plant file with an ``hj212:`` block becomes a logger on its own TCP connection to the
listener: real-time data (2011) of its mapped ``-Rtd`` items every ``interval_s`` (divided by ``--speed``), with
Flag A=1, each sent again until its 9014 arrives (HJ 212-2017: 10 s, 3 tries); hourly data (2061) of its mapped
``-Avg``/``-Min``/``-Max`` items at each local hour; a set-time command (1012) answered 9011 and 9012. Values
wander around each point's nominal value; incidents change them the way the plant would:

* ``adsorber_breakthrough``: activated carbon saturates, stack NMHC (a24088) climbs to three times its nominal;
* ``rto_trip``: the RTO's burner trips, NMHC goes to eight times nominal and flue-gas temperature (a01012) falls,
  while the main fan keeps running (its equipment state ``SBx-RS`` stays 1);
* ``ph_excursion``: outfall pH (w01001) falls to 4.5;
* ``analyzer_calibration``: every water analyzer reports calibration (flag C) with its span value.

Treatment equipment mapped as ``SBx-RS`` is reported running (1) in an equipment-state frame (2021) with each
real-time frame. The plant's other points that the treatment-plant rules read (the RTO chamber temperature, the
coating line and VOC collection fan run states, the adsorber's inlet and outlet) are MQTT devices: the MQTT
simulator (``python -m simulator``) plays them, with the incidents ``rto_trip``, ``adsorber_breakthrough`` and
``collection_fan_stop`` (``simulator.incidents``); run both against the same plant file for the whole picture.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.plant import DeviceConfig, PlantConfig
from core.yamlconf import read_yaml
from ingest.hj212 import Message, build_frame, cp_groups, flag_of, parse_frame
from ingest.hj212.segment import Version, new_qn

_LOGGER = logging.getLogger("simulator.hj212")
INCIDENTS = ("adsorber_breakthrough", "rto_trip", "ph_excursion", "analyzer_calibration")


@dataclass
class Factor:
    code: str
    nominal: float
    low: float
    high: float
    hour: list[float] = field(default_factory=list)


def equipment_of(device: DeviceConfig) -> list[str]:
    """The treatment equipment of a logger whose run state it reports (``SBx-RS`` items)."""
    assert device.hj212 is not None
    return [item.field.partition("-")[0] for item in device.hj212.fields if item.field.endswith("-RS")]


def state_of(equipment: str, incident: str | None) -> int:
    """HJ 212 run state of a treatment unit (0 stopped, 1 running): every incident here leaves the fans running
    (an RTO trip is the burner, not the fan: the waste gas still flows through a cold chamber)."""
    return 1


def _factors(device: DeviceConfig) -> tuple[list[Factor], set[str]]:
    """The -Rtd factors of a logger (nominal from the point) and the factors it reports hourly."""
    assert device.hj212 is not None
    points = {p.key: p for p in device.points}
    out, hourly = [], set()
    for item in device.hj212.fields:
        factor, _, suffix = item.field.partition("-")
        point = points[item.point]
        lo, hi = point.range or (0.0, 100.0)
        if suffix == "Rtd":
            default = 7.2 if factor == "w01001" else lo + (min(hi, 1e4) - lo) * 0.1
            nominal = point.nominal if point.nominal is not None else default
            out.append(Factor(factor, nominal, lo, hi))
        elif item.cn == "2061" and suffix in ("Avg", "Min", "Max"):
            hourly.add(factor)
    return out, hourly


def value_of(factor: Factor, t: float, rnd: random.Random, incident: str | None, elapsed: float) -> tuple[float, str]:
    """Value and flag of one factor at ``t`` seconds, with the incident ``elapsed`` seconds old."""
    value = factor.nominal * (1 + 0.05 * math.sin(t / 600.0) + rnd.gauss(0, 0.02))
    flag = "N"
    ramp = min(max(elapsed / 600.0, 0.0), 1.0)
    if incident == "adsorber_breakthrough" and factor.code == "a24088":
        value *= 1 + 2 * ramp
    elif incident == "rto_trip" and factor.code == "a24088":
        value *= 1 + 7 * ramp
    elif incident == "rto_trip" and factor.code == "a01012":
        value = value - (value - 200.0) * ramp
    elif incident == "ph_excursion" and factor.code == "w01001":
        value = factor.nominal - (factor.nominal - 4.5) * ramp
    elif incident == "analyzer_calibration" and factor.code.startswith("w") and factor.code != "w00000":
        value, flag = factor.nominal * 4, "C"
    return round(min(max(value, factor.low), factor.high), 3), flag


class SimLogger:
    """One data logger on one connection."""

    def __init__(self, device: DeviceConfig, *, host: str, port: int, tz: ZoneInfo, speed: float, seed: int) -> None:
        assert device.hj212 is not None
        self.device = device
        self.cfg = device.hj212
        self.host, self.port, self.tz, self.speed = host, port, tz, speed
        self.factors, self.hourly = _factors(device)
        self.equipment = equipment_of(device)
        self.rnd = random.Random(seed)
        self.incident: str | None = None
        self.incident_at = 0.0
        self.sent = 0
        self.answered = 0
        self.commands_done = 0
        self._answers: dict[str, asyncio.Future] = {}

    def _frame(self, cn: str, groups: list[dict], when: datetime, *, seq: int = 0) -> tuple[str, bytes]:
        qn = new_qn(when + timedelta(milliseconds=seq))  # frames of one instant keep their own QNs
        return qn, build_frame(
            Message(
                st=self.cfg.st or "32",
                cn=cn,
                mn=self.cfg.mn,
                pw=self.cfg.password,
                qn=qn,
                flag=flag_of(Version.HJ212_2017, ack=True),
                cp=cp_groups([{"DataTime": when.replace(microsecond=0)}, *groups]),
            )
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(1.0)
                continue
            listen = asyncio.create_task(self._listen(reader, writer))
            try:
                await self._send_loop(writer, stop, listen)
            except (ConnectionError, OSError):
                pass
            finally:
                listen.cancel()
                writer.close()

    async def _send_loop(self, writer: asyncio.StreamWriter, stop: asyncio.Event, listen: asyncio.Task) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        hour_start: datetime | None = None
        while not stop.is_set() and not listen.done():
            now = datetime.now(self.tz).replace(tzinfo=None)
            t = (loop.time() - started) * self.speed
            elapsed = (loop.time() - self.incident_at) * self.speed
            groups = []
            for factor in self.factors:
                value, flag = value_of(factor, t, self.rnd, self.incident, elapsed)
                if flag == "N":
                    factor.hour.append(value)
                groups.append({f"{factor.code}-Rtd": value, f"{factor.code}-Flag": flag})
            await self._send(writer, *self._frame("2011", groups, now))
            if self.equipment:
                states = [{f"{e}-RS": state_of(e, self.incident)} for e in self.equipment]
                await self._send(writer, *self._frame("2021", states, now, seq=1))
            this_hour = now.replace(minute=0, second=0, microsecond=0)
            if hour_start is not None and this_hour != hour_start and self.hourly:
                await self._send(writer, *self._frame("2061", self._hour_groups(), hour_start))
            hour_start = this_hour
            try:
                await asyncio.wait_for(stop.wait(), self.device.interval_s / self.speed)
            except TimeoutError:
                pass

    def _hour_groups(self) -> list[dict]:
        groups = []
        for factor in self.factors:
            if factor.code in self.hourly and factor.hour:
                values, factor.hour = factor.hour, []
                groups.append(
                    {
                        f"{factor.code}-Min": min(values),
                        f"{factor.code}-Avg": round(sum(values) / len(values), 3),
                        f"{factor.code}-Max": max(values),
                        f"{factor.code}-Flag": "N",
                    }
                )
        return groups

    async def _send(self, writer: asyncio.StreamWriter, qn: str, frame: bytes) -> None:
        """Send until the 9014 arrives: 10 s (scaled) and 3 tries, as a logger does."""
        future = self._answers[qn] = asyncio.get_running_loop().create_future()
        try:
            for _ in range(3):
                writer.write(frame)
                await writer.drain()
                self.sent += 1
                try:
                    await asyncio.wait_for(asyncio.shield(future), max(10.0 / self.speed, 0.5))
                    self.answered += 1
                    return
                except TimeoutError:
                    continue
        finally:
            self._answers.pop(qn, None)

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            message = parse_frame(await reader.readuntil(b"\r\n"))
            if message.cn == "9014":
                future = self._answers.get(message.qn or "")
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.cn == "1012":  # set time: ready (9011), done (9012)
                for cn, item in (("9011", {"QnRtn": 1}), ("9012", {"ExeRtn": 1})):
                    writer.write(
                        build_frame(
                            Message(
                                st="91",
                                cn=cn,
                                mn=self.cfg.mn,
                                pw=self.cfg.password,
                                qn=message.qn,
                                flag=flag_of(Version.HJ212_2017),
                                cp=cp_groups(item),
                            )
                        )
                    )
                self.commands_done += 1
                await writer.drain()

    def start_incident(self, name: str) -> None:
        self.incident = name
        self.incident_at = asyncio.get_running_loop().time()


def loggers_of(plant: PlantConfig, *, host: str, port: int, speed: float = 1.0, seed: int = 7) -> list[SimLogger]:
    out = []
    for site in plant.sites:
        for area in site.areas:
            for i, device in enumerate(d for d in area.devices if d.hj212 is not None):
                out.append(
                    SimLogger(device, host=host, port=port, tz=ZoneInfo(site.timezone), speed=speed, seed=seed + i)
                )
    return out


def main(argv: list[str] | None = None) -> None:
    from core.logging import setup_logging

    parser = argparse.ArgumentParser(prog="python -m simulator.hj212", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="plant file with hj212 loggers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--incident", choices=INCIDENTS)
    parser.add_argument("--incident-after", type=float, default=60.0, help="seconds before the incident starts")
    args = parser.parse_args(argv)
    setup_logging("INFO")
    data, _ = read_yaml(args.config)  # the registry part only: the file may carry other sections
    plant = PlantConfig.model_validate({k: v for k, v in (data or {}).items() if k in PlantConfig.model_fields})
    loggers = loggers_of(plant, host=args.host, port=args.port, speed=args.speed)

    async def run() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(logger.run(stop)) for logger in loggers]
        _LOGGER.info("simulating %d HJ 212 logger(s) toward %s:%d", len(loggers), args.host, args.port)
        if args.incident:
            try:
                await asyncio.wait_for(stop.wait(), args.incident_after)
            except TimeoutError:
                for logger in loggers:
                    logger.start_incident(args.incident)
                _LOGGER.info("incident %s started", args.incident)
        await asyncio.gather(*tasks)

    asyncio.run(run())


if __name__ == "__main__":
    main()
