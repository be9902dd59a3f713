"""Notification benchmark: alarm committed -> webhook delivered, and a flood of 1,000 alarms.

The notifier runs as its own process (``python -m alerts``, the real composition root) on a real broker and
PostgreSQL; the providers are local stand-ins (``simulator/providers.py``) that check signatures and enforce
the published rate limits (DingTalk robot 20/min, WeCom group bot 20/min, Feishu bot 100/min and 5/s), reached
through ``EHS_ALERTS_NOTIFY_ENDPOINTS``; the messages themselves are built and sent by apprise.

1. Latency: for ``--seconds``, this process commits one alarm every ``--interval`` seconds (its outbox row in
   the same transaction) to a JSON webhook channel and measures from just after the commit returned to the
   request arriving at the receiver.
2. Flood: 1,000 alarms in one area, committed in transactions of 50, notified to a DingTalk robot, a WeCom bot,
   a Feishu bot and the webhook. The alarm engine declares a flood; the notifier sends the flood message and one
   summary per interval instead of 1,000 messages. "Lost" counts alarms that reached no message on a channel
   (each summary says how many alarms it covers); "refused" counts the stand-ins' rate-limit answers.
3. Burst: ``--burst`` alarms at once (no flood) to the three bots: for ``--burst-window`` seconds, how many each
   bot got, the most in any 60 s and any 1 s (the providers' windows), how many wait in the queue, and refusals.

Prints the figures, then one JSON line (ARCHITECTURE.md, Performance targets: p99 <= 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

import psycopg

from benchmarks.common import REPO_ROOT, add_server_arguments, servers

SITE = "nbench"
FLOOD = 1000
SECRET = "benchmark-secret"
CHANNELS = ("dingtalk", "wecom", "feishu", "webhook")


def _plant(flood_start: int) -> dict:
    return {
        "sites": [
            {
                "code": SITE,
                "name": "通知基准厂",
                "areas": [
                    {"code": "cell", "name": "延迟测试区", "process": "formation", "devices": []},
                    {"code": "hall", "name": "泛滥测试区", "process": "formation", "devices": []},
                    {"code": "burst", "name": "突发测试区", "process": "formation", "devices": []},
                ],
            }
        ],
        "alarms": {
            "defaults": {
                "flood_start": flood_start,
                "flood_end": 5,
                "notify": {
                    lv: {"roles": [], "channels": list(CHANNELS)} for lv in ("low", "medium", "high", "critical")
                },
            }
        },
    }


def _apply(url: str, flood_start: int) -> None:
    from cli.plantfile import FullPlant, MainFile, SafetySections, apply_full
    from core.plant import PlantConfig

    main = MainFile.model_validate(_plant(flood_start))
    full = FullPlant(
        PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields))),
        SafetySections.model_validate(main.model_dump(include=set(SafetySections.model_fields), by_alias=True)),
    )
    with psycopg.connect(url) as conn:
        apply_full(conn=conn, full=full, source="benchmark")


def _channel(conn: psycopg.Connection, name: str, kind: str, url: str, area: str, **extra) -> None:
    from alerts.notifications.notify_config import ChannelSpec, put_channel

    put_channel(
        conn=conn, secret=SECRET, spec=ChannelSpec(name=name, kind=kind, url=url, site=SITE, area=area, **extra)
    )


def _raise(conn: psycopg.Connection, rules: list[str], area: str) -> list[int]:
    from alerts import service
    from core.model import Finding, Severity, SubjectRef

    ids = []
    for rule in rules:
        now = _now()
        ids += service.apply_findings(
            conn=conn,
            now=now,
            findings=[
                Finding(
                    rule=rule,
                    detector="bench",
                    subject=SubjectRef(SITE, area),
                    severity=Severity.HIGH,
                    ts=now,
                    value=1.0,
                    message=f"{rule} high",
                    details={"finding_id": f"{rule}-{uuid.uuid4().hex}", "name": rule},
                )
            ],
        )
    return ids


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO_ROOT))
    from simulator.providers import Providers, text_of

    result: dict = {}
    with (
        servers(args, prefix="ehs-bench-notify-") as s,
        Providers(
            dingtalk={"benchding": "SECbench0123", "burstding": "SECbench0123"},
            wecom={"benchwecom", "burstwecom"},
            feishu={"benchfeishu", "burstfeishu"},
        ) as p,
    ):
        _apply(s.database_url, flood_start=1_000_000)
        port = p.server.server_address[1]
        with psycopg.connect(s.database_url) as conn:
            _channel(
                conn, "latency-hook", "webhook", f"json://127.0.0.1:{port}/latency", "cell", rate_per_s=1000, burst=1000
            )
            _channel(conn, "flood-ding", "dingtalk", "dingtalk://SECbench0123@benchding/", "hall")
            _channel(conn, "flood-wecom", "wecom", "wecombot://benchwecom", "hall")
            _channel(conn, "flood-feishu", "feishu", "feishu://benchfeishu", "hall")
            _channel(conn, "flood-hook", "webhook", f"json://127.0.0.1:{port}/flood", "hall")
            _channel(conn, "burst-ding", "dingtalk", "dingtalk://SECbench0123@burstding/", "burst")
            _channel(conn, "burst-wecom", "wecom", "wecombot://burstwecom", "burst")
            _channel(conn, "burst-feishu", "feishu", "feishu://burstfeishu", "burst")
        env = {
            "EHS_DATABASE_URL": s.database_url,
            "EHS_MQTT_URL": s.mqtt_url,
            "EHS_SECRET_KEY": SECRET,
            "EHS_ALERTS_CLIENT_ID": f"bench-notify-{uuid.uuid4().hex[:8]}",
            "EHS_LOG_LEVEL": "WARNING",
            "EHS_ALERTS_NOTIFY_ENDPOINTS": json.dumps({k: p.base for k in ("dingtalk", "wecom", "feishu")}),
            "EHS_ALERTS_NOTIFY_GROUP_INTERVAL_S": str(args.group_interval),
            "EHS_ALERTS_PUBLISH_ALARMS": "false",
            "PYTHONPATH": str(REPO_ROOT),
        }
        worker = subprocess.Popen([sys.executable, "-m", "alerts"], env={**os.environ, **env}, cwd=REPO_ROOT)
        try:
            time.sleep(2.0)  # the worker connects and LISTENs
            result.update(_latency(s.database_url, p, args))
            _apply(s.database_url, flood_start=10)
            result.update(_flood(s.database_url, p, args, text_of))
            _apply(s.database_url, flood_start=1_000_000)
            result.update(_burst(s.database_url, p, args))
        finally:
            worker.terminate()
            worker.wait(20)
        result.update(broker=s.mqtt_url.split("@")[-1], database=s.database)
    return result


def _latency(url: str, p, args: argparse.Namespace) -> dict:
    committed: dict[int, float] = {}
    deadline = time.monotonic() + args.seconds
    n = 0
    with psycopg.connect(url) as conn:
        while time.monotonic() < deadline:
            with conn.transaction():
                alarm_ids = _raise(conn, [f"bench.latency.{n}"], "cell")
            committed[alarm_ids[0]] = time.time()
            n += 1
            time.sleep(args.interval)
    wait_until = time.monotonic() + 30
    arrived: dict[int, float] = {}
    while time.monotonic() < wait_until and len(arrived) < len(committed):
        for m in p.messages("webhook"):
            found = re.search(r"/alarms/(\d+)\?", (m["body"] or {}).get("message", ""))
            if m["token"] == "/latency" and found:
                arrived.setdefault(int(found.group(1)), m["at"])
        time.sleep(0.05)
    ms = [(arrived[a] - committed[a]) * 1000 for a in committed if a in arrived]
    return {
        "alarms": len(committed),
        "delivered": len(ms),
        "delivered_p50_ms": _pct(ms, 0.5),
        "delivered_p95_ms": _pct(ms, 0.95),
        "delivered_p99_ms": _pct(ms, 0.99),
        "delivered_max_ms": round(max(ms), 1) if ms else None,
        "delivered_mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def _flood(url: str, p, args: argparse.Namespace, text_of) -> dict:
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        for batch in range(FLOOD // 50):
            with conn.transaction():
                _raise(conn, [f"bench.flood.{batch * 50 + i}" for i in range(50)], "hall")
    committed_s = time.monotonic() - started

    def open_work() -> int:
        with psycopg.connect(url) as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM notification_outbox WHERE status IN ('pending', 'sending') OR "
                "(status = 'grouped' AND group_id IS NULL)) + (SELECT count(*) FROM notification_delivery WHERE "
                "status IN ('pending', 'sending'))"
            ).fetchone()[0]

    deadline = time.monotonic() + args.flood_timeout
    time.sleep(1.0)
    while open_work() and time.monotonic() < deadline:
        time.sleep(0.5)
    drained_s = time.monotonic() - started
    covered, sent = {}, {}
    for channel in CHANNELS:
        msgs = [m for m in p.messages(channel) if channel != "webhook" or m["token"] == "/flood"]
        sent[channel] = len(msgs)
        n = 0
        for m in msgs:
            text = text_of(m)
            if (found := re.search(r"本期 (\d+) 条报警", text)) is not None:
                n += int(found.group(1))
            elif "报警泛滥" not in text:
                n += 1  # an alarm sent on its own
        covered[channel] = n
    refused = {c: sum(1 for m in p.refused if m["provider"] == c) for c in CHANNELS}
    with psycopg.connect(url) as conn:
        floods = conn.execute("SELECT count(*) FROM alarm_flood").fetchone()[0]
    out = {
        "flood_alarms": FLOOD,
        "flood_lost": max(FLOOD - n for n in covered.values()),
        "flood_commit_s": round(committed_s, 2),
        "flood_drained_s": round(drained_s, 1),
        "floods": floods,
        "flood_unfinished": open_work(),
    }
    out.update({f"sent_{c}": sent[c] for c in CHANNELS})
    out.update({f"refused_{c}": refused[c] for c in CHANNELS})
    return out


def _burst(url: str, p, args: argparse.Namespace) -> dict:
    tokens = {"dingtalk": "burstding", "wecom": "burstwecom", "feishu": "burstfeishu"}
    with psycopg.connect(url) as conn, conn.transaction():
        _raise(conn, [f"bench.burst.{i}" for i in range(args.burst)], "burst")
    time.sleep(args.burst_window)
    out: dict = {"burst_alarms": args.burst, "burst_window_s": args.burst_window}
    with psycopg.connect(url) as conn:
        waiting = dict(
            conn.execute(
                "SELECT c.kind, count(*) FROM notification_delivery d "
                "JOIN notification_channel c ON c.id = d.channel_id "
                "WHERE c.name LIKE 'burst-%' AND d.status = 'pending' GROUP BY c.kind"
            ).fetchall()
        )
        failed = conn.execute(
            "SELECT count(*) FROM notification_delivery d JOIN notification_channel c ON c.id = "
            "d.channel_id WHERE c.name LIKE 'burst-%' AND d.status = 'failed'"
        ).fetchone()[0]
    for kind, token in tokens.items():
        times = sorted(m["at"] for m in p.messages(kind) if m["token"] == token)
        out[f"burst_sent_{kind}"] = len(times)
        out[f"burst_queued_{kind}"] = waiting.get(kind, 0)
        out[f"burst_max_per_60s_{kind}"] = _densest(times, 60.0)
        out[f"burst_max_per_1s_{kind}"] = _densest(times, 1.0)
        out[f"burst_refused_{kind}"] = sum(1 for m in p.refused if m["token"] == token)
    out["burst_failed"] = failed
    return out


def _densest(times: list[float], window: float) -> int:
    """The most arrivals within any ``window`` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/notify.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time of the latency part")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between latency alarms")
    parser.add_argument("--group-interval", type=float, default=10.0, help="flood summary interval (s)")
    parser.add_argument("--flood-timeout", type=float, default=120.0, help="longest wait for the flood to drain")
    parser.add_argument("--burst", type=int, default=40, help="alarms of the rate-limit burst")
    parser.add_argument("--burst-window", type=float, default=20.0, help="seconds the burst is watched")
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    r = run(args)
    for line in (
        f"servers  : {r['broker']} broker, {r['database']}",
        f"latency  : {r['alarms']} alarms, {r['delivered']} delivered; committed -> webhook p50 "
        f"{r['delivered_p50_ms']} ms, p95 {r['delivered_p95_ms']} ms, p99 {r['delivered_p99_ms']} ms, max "
        f"{r['delivered_max_ms']} ms   (target p99 <= 1000 ms)",
        f"flood    : {r['flood_alarms']} alarms committed in {r['flood_commit_s']} s, drained in "
        f"{r['flood_drained_s']} s; lost {r['flood_lost']}; messages "
        + ", ".join(f"{c} {r[f'sent_{c}']} (refused {r[f'refused_{c}']})" for c in CHANNELS),
        f"burst    : {r['burst_alarms']} alarms at once, watched {r['burst_window_s']:g} s; "
        + ", ".join(
            f"{c} sent {r[f'burst_sent_{c}']} (most {r[f'burst_max_per_60s_{c}']}/60 s, "
            f"{r[f'burst_max_per_1s_{c}']}/1 s), queued {r[f'burst_queued_{c}']}, refused {r[f'burst_refused_{c}']}"
            for c in ("dingtalk", "wecom", "feishu")
        )
        + f"; failed {r['burst_failed']}",
    ):
        print(line)  # noqa: T201
    print(json.dumps(r))  # noqa: T201


if __name__ == "__main__":
    main()
