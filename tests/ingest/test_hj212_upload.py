"""Upload to the authority's platform against a stand-in that drops the connection and asks for history."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from core.plant import apply_plant
from ingest.hj212.upload import PlatformConfig, Uploader
from tests.ingest.hj212_platform import Platform
from tests.ingest.hj212_support import hj212_plant

pytestmark = pytest.mark.db
TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 6, 10, tzinfo=TZ)
MN, PW = "88888880000001", "654321"


def config(site: str, port: int) -> PlatformConfig:
    return PlatformConfig(
        name="provincial",
        host="127.0.0.1",
        port=port,
        mn=MN,
        password=PW,
        cns=["2061"],
        timeout_s=2,
        retries=1,
        items=[
            {"factor": "w01018", "point": f"{site}/ww-logger-000/cod_mg_l"},
            {
                "factor": "w00000",
                "point": f"{site}/ww-logger-000/flow_l_s",
                "cou_point": f"{site}/ww-logger-000/outflow_1h_m3",
            },
        ],
    )


def insert(url: str, key: str, values: list[tuple[datetime, float, str | None]]) -> None:
    with psycopg.connect(url) as conn:
        pid = conn.execute(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = "
            "'ww-logger-000' AND p.key = %s",
            (key,),
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, %s)",
                [(t, pid, v, 0 if f in (None, "N") else 2) for t, v, f in values],
            )
            cur.executemany(
                "INSERT INTO reading_flag (point_id, time, flag) VALUES (%s, %s, %s)",
                [(pid, t, f) for t, _, f in values if f not in (None, "N")],
            )


async def until(condition, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_upload_in_order_through_a_dropped_connection_a_restart_and_a_history_request(
    database_url: str, site: str
) -> None:
    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=hj212_plant(site, loggers=1), source="test")
    # hours 00-04: COD 10 + hour, one value a minute; hour 02 also has a calibration value of 99 (left out, C)
    insert(
        database_url,
        "cod_mg_l",
        [(DAY + timedelta(hours=h, minutes=m), 10.0 + h, "N") for h in range(6) for m in range(0, 60, 10)],
    )
    insert(database_url, "cod_mg_l", [(DAY + timedelta(hours=2, minutes=5), 99.0, "C")])
    insert(database_url, "flow_l_s", [(DAY + timedelta(hours=h), 2.0, None) for h in range(6)])
    insert(database_url, "outflow_1h_m3", [(DAY + timedelta(hours=h), 7.2, "N") for h in range(6)])
    clock = [DAY + timedelta(hours=5, minutes=10)]

    async def scenario() -> tuple[Platform, list]:
        platform = Platform(mn=MN, pw=PW, drop_at=3)
        await platform.start()
        stop = asyncio.Event()
        uploader = Uploader(
            database_url=database_url, config=config(site, platform.port), queue_every_s=0.2, clock=lambda: clock[0]
        )
        task = asyncio.create_task(uploader.run(stop))
        await until(lambda: len(platform.received) == 5)
        stop.set()
        await task
        # a restart: a new uploader, an hour later; only the new hour is sent
        clock[0] = DAY + timedelta(hours=6, minutes=10)
        stop = asyncio.Event()
        again = Uploader(
            database_url=database_url, config=config(site, platform.port), queue_every_s=0.2, clock=lambda: clock[0]
        )
        task = asyncio.create_task(again.run(stop))
        await until(lambda: len(platform.received) == 6)
        qn = await platform.request_history(
            "2061", (DAY + timedelta(hours=1)).replace(tzinfo=None), (DAY + timedelta(hours=2)).replace(tzinfo=None)
        )
        await until(lambda: any(r.cn == "9012" for r in platform.replies))
        stop.set()
        await task
        await platform.stop()
        return platform, [qn, uploader.connections]

    platform, (qn, connections) = asyncio.run(scenario())
    assert connections == 2  # the platform dropped the first connection
    assert platform.refused == [] and platform.out_of_order == [] and platform.duplicates == 0
    scheduled = [m for m in platform.received if m.qn != qn]
    assert [m.data_time.hour for m in scheduled] == [0, 1, 2, 3, 4, 5]
    assert all(m.cn == "2061" and m.needs_ack and m.st == "32" for m in scheduled)
    third = scheduled[2]
    assert third.fields["w01018-Avg"] == 12.0 and third.fields["w01018-Max"] == 12.0
    assert third.fields["w01018-Flag"] == "C"  # abnormal if any value in the hour was
    assert scheduled[0].fields["w01018-Flag"] == "N" and scheduled[0].fields["w00000-Cou"] == 7.2
    history = [m for m in platform.received if m.qn == qn]
    assert [m.data_time.hour for m in history] == [1, 2]
    assert [(r.cn, r.qn) for r in platform.replies] == [("9011", qn), ("9012", qn)]
    assert platform.replies[1].fields["ExeRtn"] == 1.0
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT reason, attempts, sent_at IS NOT NULL, answered_at IS NOT NULL FROM hj212_outbox ORDER BY id"
        ).fetchall()
    assert len(audit) == 8 and all(sent and answered for _, _, sent, answered in audit)
    assert [a for _, a, _, _ in audit[:6]] == [1, 1, 2, 1, 1, 1]  # the dropped frame was sent twice


def test_minute_and_daily_frames_are_queued_once_per_complete_interval(database_url: str, site: str) -> None:
    from ingest.hj212.segment import parse_frame
    from ingest.hj212.upload import queue_due

    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=hj212_plant(site, loggers=1), source="test")
    insert(database_url, "cod_mg_l", [(DAY + timedelta(minutes=5 * k), float(k % 4), "N") for k in range(24 * 12)])
    cfg = config(site, 1).model_copy(update={"cns": ["2051", "2031"], "minute_interval_min": 10})
    with psycopg.connect(database_url) as conn:
        first = queue_due(conn, cfg, now=DAY + timedelta(hours=1, minutes=5))
        again = queue_due(conn, cfg, now=DAY + timedelta(hours=1, minutes=9))
        later = queue_due(conn, cfg, now=DAY + timedelta(days=1, minutes=1))
        frames = [
            parse_frame(bytes(f)) for (f,) in conn.execute("SELECT frame FROM hj212_outbox ORDER BY id").fetchall()
        ]
    assert (first, again) == (6, 0)  # 00:00-00:50: six whole 10-minute intervals, queued once
    assert later == (24 * 6 - 6) + 1  # the rest of the day's intervals, then the day itself
    minute = frames[0]
    assert minute.cn == "2051" and minute.fields["w01018-Avg"] == 0.5  # values 0 and 1 at :00 and :05
    daily = frames[-1]
    assert daily.cn == "2031" and daily.data_time == DAY.replace(tzinfo=None)
    assert (
        daily.fields["w01018-Avg"] == 1.5 and daily.fields["w01018-Max"] == 3.0 and daily.fields["w01018-Flag"] == "N"
    )


def test_a_frame_too_long_for_1024_bytes_is_sent_as_split_packets(database_url: str, site: str) -> None:
    from ingest.hj212.segment import parse_frame
    from ingest.hj212.split import Reassembler
    from ingest.hj212.upload import UploadItem, queue_due

    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=hj212_plant(site, loggers=1), source="test")
    insert(database_url, "cod_mg_l", [(DAY + timedelta(minutes=10 * k), 12.345 + k, "N") for k in range(6)])
    items = [UploadItem(factor=f"w{k:05d}", point=f"{site}/ww-logger-000/cod_mg_l") for k in range(25)]
    cfg = config(site, 1).model_copy(update={"items": items})
    with psycopg.connect(database_url) as conn:
        queued = queue_due(conn, cfg, now=DAY + timedelta(hours=1, minutes=1))
        frames = [bytes(f) for (f,) in conn.execute("SELECT frame FROM hj212_outbox ORDER BY id").fetchall()]
    parts = [parse_frame(f) for f in frames]
    assert queued == len(parts) >= 2 and all(len(f) <= 1036 + 2 for f in frames)
    assert [(p.pno, p.pnum, p.split) for p in parts] == [(i + 1, len(parts), True) for i in range(len(parts))]
    assert len({p.qn for p in parts}) == len(parts)
    joined = Reassembler()
    whole = [joined.add(p) for p in parts][-1]
    assert whole is not None and len([k for k in whole.fields if k.endswith("-Avg")]) == 25
    assert whole.fields["w00007-Avg"] == 14.845  # the mean of 12.345 ... 17.345
