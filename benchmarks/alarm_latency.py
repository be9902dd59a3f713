"""Alarm latency benchmark: trigger reading published -> interlock command on the broker, and -> alarm committed.

A separate publisher process keeps a background load on ingest (default 50,000 readings/s: 500 devices x 10
points, 100 readings per message, QoS 1, paced evenly), of which 10 % are watched by a rule that never fires, as
in a plant where most points carry no rule. Ingest runs as its own process (``python -m ingest``, the real
composition root) on a real Mosquitto and PostgreSQL. This process then publishes trigger readings one at a
time (an H2 reading above its limit on one of 20 gas detectors, then one back to normal) and measures:

* command: from just before the trigger is published to the interlock command (``exhaust_fan.on`` of the
  area's response plan) arriving at a subscriber on the broker;
* alarm committed: from the same instant to the ``alarm_changed`` notification, which PostgreSQL delivers
  only after the transaction holding the alarm has committed.

Prints the figures, then one JSON line (ARCHITECTURE.md, Performance targets: p99 <= 100 ms and <= 250 ms).
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import threading
import time

import orjson
import psycopg

from benchmarks.common import (
    REPO_ROOT,
    add_server_arguments,
    ingest_counters,
    ingest_env,
    payload_templates,
    publishing_client,
    servers,
    start_ingest,
)

SITE = "bench"
TRIGGERS = 20


def _plant(devices: int, points: int) -> dict:
    gas = [{"key": "h2_ppm", "name": "氢气", "quantity": "h2", "range": [0, 40000]}]
    return {
        "sites": [
            {
                "code": SITE,
                "name": "报警延迟基准",
                "areas": [
                    {
                        "code": "hall",
                        "name": "背景负载",
                        "process": "formation",
                        "devices": [
                            {
                                "code": f"dev-{d:04d}",
                                "name": f"设备 {d}",
                                "kind": "formation_cabinet",
                                "interval_s": 1,
                                "points": [
                                    {
                                        "key": f"t{p}_temp_c",
                                        "name": f"温度 {p}",
                                        "quantity": "temperature",
                                        "range": [-50, 1200],
                                    }
                                    for p in range(points)
                                ],
                            }
                            for d in range(devices)
                        ],
                    },
                    {
                        "code": "cell",
                        "name": "触发区",
                        "process": "formation",
                        "devices": [
                            *(
                                {
                                    "code": f"trig-{t:02d}",
                                    "name": f"氢气 {t}",
                                    "kind": "gas_detector",
                                    "interval_s": 1,
                                    "points": gas,
                                }
                                for t in range(TRIGGERS)
                            ),
                            {
                                "code": "fan-01",
                                "name": "排风机",
                                "kind": "exhaust_fan",
                                "interval_s": 5,
                                "points": [{"key": "fan_running_bool", "name": "运行", "quantity": "state"}],
                            },
                        ],
                    },
                ],
            }
        ],
        "rules": [
            {
                "id": "bench.background",
                "name": "背景规则",
                "type": "limit",
                "select": {"area": "hall", "key": "t0_temp_c"},
                "high": [{"at": 1100, "severity": "high"}],
            },
            {
                "id": "bench.h2",
                "name": "氢气",
                "type": "gas",
                "gas": "h2",
                "select": {"area": "cell"},
                "levels": [{"at": 400, "severity": "high"}],
            },
        ],
        "actuators": [{"device": "fan-01"}],
        "response_plans": [
            {
                "area": "cell",
                "name": "基准预案",
                "levels": [
                    {
                        "level": 2,
                        "name": "二级",
                        "min_severity": "high",
                        "rules": ["bench.h2"],
                        "interlocks": [{"device": "fan-01", "action": "exhaust_fan.on"}],
                    }
                ],
            }
        ],
    }


# --- background publisher (its own process) ------------------------------------------------------------------


def publisher(args: argparse.Namespace) -> None:
    """Publish ``rate`` readings/s, paced evenly, until ``seconds`` pass; print what the broker acknowledged."""
    client, acked = publishing_client(args.mqtt_url, queued=20000)
    per_ts = args.readings_per_message // args.points
    topics, templates = zip(*payload_templates(SITE, args.devices, args.points, args.readings_per_message), strict=True)
    per_s = args.rate / args.readings_per_message
    sent, started = 0, time.time()
    last_ts = 0
    deadline = time.monotonic() + args.seconds
    t_start = time.monotonic()
    while time.monotonic() < deadline:
        due = t_start + sent / per_s
        if (ahead := due - time.monotonic()) > 0:
            time.sleep(ahead)
        d = sent % args.devices
        if d == 0:  # a new round: live timestamps, later than the last round's
            last_ts = max(int(time.time() * 1000) - per_ts, last_ts + per_ts)
        client.publish(topics[d], (templates[d] % tuple(range(last_ts, last_ts + per_ts))).encode(), qos=1)
        sent += 1
    elapsed = time.time() - started
    while acked[0] < sent and time.time() - started < args.seconds + 30:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    print(
        json.dumps(
            {
                "messages": sent,
                "acked": acked[0],
                "readings": acked[0] * args.readings_per_message,  # noqa: T201
                "seconds": elapsed,
            }
        )
    )


# --- the measurement ----------------------------------------------------------------------------------------


class Watch:
    """Interlock commands seen on the broker, and alarm notifications after commit, with arrival times."""

    def __init__(self, mqtt_url: str, db_url: str) -> None:
        from core import channels
        from core import mqtt as mq

        self.commands: queue.Queue[float] = queue.Queue()
        self.alarms: queue.Queue[tuple[float, dict]] = queue.Queue()
        self._stop = threading.Event()
        address = mq.BrokerAddress.parse(mqtt_url)
        ready = threading.Event()
        self.client = mq.new_client(address, protocol=mq.detect_protocol(address))
        self.client.on_message = lambda *_a: self.commands.put(time.time())
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_connect = lambda c, *_: c.subscribe(f"ehs/v1/{SITE}/fan-01/cmd", qos=1)
        mq.connect_blocking(self.client, address)
        ready.wait(10)
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.conn.execute(f"LISTEN {channels.ALARMS}")
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            for note in self.conn.notifies(timeout=0.5, stop_after=1):
                self.alarms.put((time.time(), orjson.loads(note.payload)))

    def alarm(self, source: str, kind: str, timeout: float) -> float | None:
        deadline = time.time() + timeout
        while (left := deadline - time.time()) > 0:
            try:
                at, body = self.alarms.get(timeout=left)
            except queue.Empty:
                return None
            if body["source"] == source and body["kind"] == kind:
                return at
        return None

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.conn.close()
        self.client.disconnect()
        self.client.loop_stop()


def engine_throughput(devices: int, points: int, readings: int = 1_000_000) -> float:
    """Readings per second through the rule engine alone (the stage-thread budget), on the same plant."""
    from datetime import UTC, datetime, timedelta

    from core.model import PointKind
    from core.registry import DeviceInfo, PlantIndex, PointInfo
    from detectors.engine import Engine
    from detectors.specs import RuleSection

    index, pid = {}, 1
    for d in range(devices):
        info = DeviceInfo(d + 1, SITE, f"dev-{d:04d}", "hall", "formation_cabinet", 1.0)
        for p in range(points):
            info.points[f"t{p}_temp_c"] = PointInfo(pid, f"t{p}_temp_c", PointKind.GAUGE, -50, 1200, "temperature", "c")
            pid += 1
        index[(SITE, info.code)] = info
    engine = Engine(RuleSection.model_validate({"rules": _plant(devices, points)["rules"][:1]}), PlantIndex(index, 1))
    t0, n = datetime.now(UTC), pid - 1
    rows = [(t0 + timedelta(milliseconds=i // n), i % n + 1, 25.0, 0) for i in range(readings)]
    started = time.perf_counter()
    for i in range(0, len(rows), 60_000):
        engine.evaluate(rows[i : i + 60_000])
    return len(rows) / (time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _measure(args: argparse.Namespace, mqtt_url: str, db_url: str) -> dict:
    from core import mqtt as mq

    watch = Watch(mqtt_url, db_url)
    address = mq.BrokerAddress.parse(mqtt_url)
    trigger = mq.new_client(address, protocol=mq.detect_protocol(address))
    mq.connect_blocking(trigger, address)
    commands, commits, missed = [], [], 0
    try:
        time.sleep(args.warmup)  # the background load settles
        before = ingest_counters(db_url)
        t_begin = time.time()
        deadline = time.monotonic() + args.seconds
        n = 0
        while time.monotonic() < deadline:
            device = f"trig-{n % TRIGGERS:02d}"
            source = f"{SITE}/cell/{device}/h2_ppm"
            topic = f"ehs/v1/{SITE}/{device}/telemetry"
            while not watch.commands.empty():
                watch.commands.get_nowait()
            t0 = time.time()
            trigger.publish(topic, b'{"h2_ppm": 900.0}', qos=1)
            try:
                commands.append((watch.commands.get(timeout=5) - t0) * 1000)
            except queue.Empty:
                missed += 1
            committed = watch.alarm(source, "raise", 5)
            if committed is None:
                missed += 1
            else:
                commits.append((committed - t0) * 1000)
            trigger.publish(topic, b'{"h2_ppm": 0.5}', qos=1)
            watch.alarm(source, "clear", 5)
            n += 1
            time.sleep(max(0.0, args.interval - (time.time() - t0)))
        after = ingest_counters(db_url)
        span = time.time() - t_begin
    finally:
        trigger.disconnect()
        trigger.loop_stop()
        watch.close()
    written = after.get("readings_written", 0) - before.get("readings_written", 0)
    return {
        "commands": commands,
        "commits": commits,
        "missed": missed,
        "triggers": n,
        "ingested_per_s": written / span if span else 0.0,
    }


def run(args: argparse.Namespace) -> dict:
    from cli.plantfile import FullPlant, MainFile, SafetySections, apply_full
    from core.plant import PlantConfig

    with servers(args, prefix="ehs-bench-alarm-") as s:
        main = MainFile.model_validate(_plant(args.devices, args.points))
        full = FullPlant(
            PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields))),
            SafetySections.model_validate(main.model_dump(include=set(SafetySections.model_fields), by_alias=True)),
        )
        with psycopg.connect(s.database_url) as conn:
            apply_full(conn=conn, full=full, source="benchmark")
        env = ingest_env(s, EHS_INGEST_HEARTBEAT_S="0.5")
        procs = [start_ingest(env)]
        try:
            pub_seconds = args.warmup + args.seconds + 15
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.alarm_latency",
                        "--publisher",
                        "--mqtt-url",
                        s.mqtt_url,
                        "--seconds",
                        str(pub_seconds),
                        "--devices",
                        str(args.devices),
                        "--points",
                        str(args.points),
                        "--readings-per-message",
                        str(args.readings_per_message),
                        "--rate",
                        str(args.rate),
                    ],
                    env=env,
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            measured = _measure(args, s.mqtt_url, s.database_url)
            out, _ = procs[1].communicate(timeout=pub_seconds + 60)
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)
        engine_rate = engine_throughput(args.devices, args.points)
        published = json.loads(out.strip().splitlines()[-1])
        c, a = measured["commands"], measured["commits"]
        return {
            "background_readings_per_s": round(published["readings"] / published["seconds"]),
            "background_ingested_per_s": round(measured["ingested_per_s"]),
            "command_p50_ms": round(_percentile(c, 0.50), 1),
            "command_p95_ms": round(_percentile(c, 0.95), 1),
            "command_p99_ms": round(_percentile(c, 0.99), 1),
            "command_max_ms": round(max(c, default=0), 1),
            "alarm_commit_p50_ms": round(_percentile(a, 0.50), 1),
            "alarm_commit_p95_ms": round(_percentile(a, 0.95), 1),
            "alarm_commit_p99_ms": round(_percentile(a, 0.99), 1),
            "alarm_commit_max_ms": round(max(a, default=0), 1),
            "samples": len(c),
            "missed": measured["missed"],
            "triggers": measured["triggers"],
            "readings_per_message": args.readings_per_message,
            "broker": s.broker,
            "database": s.database,
            "mean_command_ms": round(statistics.fmean(c), 1) if c else None,
            "engine_readings_per_s": round(engine_rate),
            "bound_share": round(1 / args.points, 3),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/alarm_latency.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time")
    parser.add_argument("--rate", type=float, default=50_000, help="background readings per second")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--points", type=int, default=10, help="points per background device")
    parser.add_argument("--readings-per-message", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between trigger readings")
    parser.add_argument("--warmup", type=float, default=5.0, help="background load before measuring")
    add_server_arguments(parser)
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publisher:
        publisher(args)
        return
    r = run(args)
    for line in (
        f"servers    : {r['broker']} broker, {r['database']}",
        f"background : {r['background_readings_per_s']:,} readings/s published ({args.readings_per_message} per "
        f"message, QoS 1), {r['background_ingested_per_s']:,} readings/s committed by ingest while measuring",
        f"triggers   : {r['triggers']} ({r['samples']} commands seen, {r['missed']} missed)",
        f"command    : p50 {r['command_p50_ms']} ms, p95 {r['command_p95_ms']} ms, p99 {r['command_p99_ms']} ms, "
        f"max {r['command_max_ms']} ms   (target p99 <= 100 ms)",
        f"alarm      : p50 {r['alarm_commit_p50_ms']} ms, p95 {r['alarm_commit_p95_ms']} ms, p99 "
        f"{r['alarm_commit_p99_ms']} ms, max {r['alarm_commit_max_ms']} ms committed   (target p99 <= 250 ms)",
        f"engine     : {r['engine_readings_per_s']:,} readings/s through the rules alone, {r['bound_share']:.0%} "
        "of the points bound (one dict lookup for the rest)",
    ):
        print(line)  # noqa: T201
    print(json.dumps(r))  # noqa: T201


if __name__ == "__main__":
    main()
