"""The HJ 212 listener over real TCP against the real PostgreSQL: many loggers at once, answers, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from core.plant import apply_plant, export_plant
from ingest.hj212 import Message, build_frame, cp_groups, wrap
from ingest.hj212.listener import Hj212Listener
from ingest.hj212.segment import new_qn
from ingest.hj212.settings import Hj212Settings
from tests.ingest.hj212_support import PW, LoggerClient, hj212_plant, mn_of, upload

pytestmark = pytest.mark.db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_now(minutes_ago: int = 0) -> datetime:
    now = datetime.now(SHANGHAI) - timedelta(minutes=minutes_ago)
    return now.replace(tzinfo=None, second=0, microsecond=0)


def run(url: str, scenario: Callable[[Hj212Listener], Awaitable[None]], **settings) -> Hj212Listener:
    async def main() -> Hj212Listener:
        listener = Hj212Listener(
            database_url=url, settings=Hj212Settings(**{"host": "127.0.0.1", "port": 0, "heartbeat_s": 0.2, **settings})
        )
        await listener.start()
        try:
            await scenario(listener)
        finally:
            await listener.stop()
        return listener

    return asyncio.run(main())


@pytest.fixture
def hj212_db(database_url: str, site: str) -> str:
    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=hj212_plant(site, loggers=60), source="test")
    return database_url


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def point_id(url: str, device: str, key: str) -> int:
    return rows(
        url,
        "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = %s AND p.key = %s",
        (device, key),
    )[0][0]


async def wait_db(url: str, sql: str, expected, params: tuple = (), timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await asyncio.to_thread(rows, url, sql, params)
        if got == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{sql}: {got} != {expected}")
        await asyncio.sleep(0.05)


def test_plant_file_carries_the_loggers_and_exports_them(hj212_db: str, site: str) -> None:
    with psycopg.connect(hj212_db) as conn:
        exported = export_plant(conn=conn, site=site)
        again = apply_plant(conn=conn, plant=hj212_plant(site, loggers=60), source="test")
    device = exported.sites[0].areas[0].devices[0]
    assert device.hj212 is not None and device.hj212.mn == mn_of(0) and device.hj212.password == PW
    assert {(f.cn, f.field, f.point) for f in device.hj212.fields} >= {
        ("2011", "w01018-Rtd", "cod_mg_l"),
        ("2061", "w01018-Avg", "cod_1h_mg_l"),
        ("2021", "SB1-RS", "pump_rs_code"),
        ("2041", "SB1-RT", "pump_rt_h"),
    }
    assert not again.changed  # applying the same file twice changes nothing


def test_many_loggers_at_once_get_their_data_answers_after_commit(hj212_db: str) -> None:
    loggers = 60
    when = local_now(5)
    hour = when.replace(minute=0) - timedelta(hours=1)

    async def one(port: int, i: int) -> list[Message]:
        client = await LoggerClient.connect(port)
        answers = []
        for k in range(3):
            await client.send(
                upload(
                    mn_of(i),
                    "2011",
                    [
                        {"w01018-Rtd": 40 + i + k / 10, "w01018-Flag": "N"},
                        {"w01001-Rtd": 7.2, "w01001-Flag": "N"},
                        {"w00000-Rtd": 12.5},
                    ],
                    when=when + timedelta(minutes=k),
                    qn_ms=k,
                )
            )
            answers.append(await client.receive())
        await client.send(
            upload(
                mn_of(i),
                "2061",
                [
                    {"w01018-Min": 30.1, "w01018-Avg": 41.5, "w01018-Max": 50.2, "w01018-Flag": "M"},
                    {"w00000-Cou": 63.0, "w00000-Flag": "N"},
                ],
                when=hour,
            )
        )
        answers.append(await client.receive())
        await client.close()
        return answers

    async def scenario(listener: Hj212Listener) -> None:
        results = await asyncio.gather(*(one(listener.port, i) for i in range(loggers)))
        for i, answers in enumerate(results):
            assert [a.cn for a in answers] == ["9014"] * 4
            assert all(a.st == "91" and a.mn == mn_of(i) and a.pw == PW and not a.needs_ack for a in answers)
            later = (when + timedelta(minutes=1)).replace(microsecond=1000)
            assert answers[0].qn == new_qn(when) and answers[1].qn == new_qn(later)

    listener = run(hj212_db, scenario)
    assert listener.counters["readings_written"] == loggers * (3 * 3 + 2)
    assert rows(hj212_db, "SELECT count(*) FROM reading")[0][0] == loggers * 11
    cod = point_id(hj212_db, "ww-logger-007", "cod_mg_l")
    stored = rows(hj212_db, "SELECT time, value, quality FROM reading WHERE point_id = %s ORDER BY time", (cod,))
    assert [v for _, v, _ in stored] == [47.0, 47.1, 47.2]
    assert stored[0][0] == when.replace(tzinfo=SHANGHAI).astimezone(UTC)
    hourly = point_id(hj212_db, "ww-logger-007", "cod_1h_mg_l")
    assert rows(
        hj212_db,
        "SELECT r.time, r.value, r.quality, f.flag FROM reading r JOIN reading_flag f USING "
        "(point_id, time) WHERE point_id = %s",
        (hourly,),
    ) == [(hour.replace(tzinfo=SHANGHAI).astimezone(UTC), 41.5, 2, "M")]  # maintenance: bad quality
    assert rows(hj212_db, "SELECT count(*) FROM reading_flag WHERE point_id = %s", (cod,))[0][0] == 0  # N: no row
    assert rows(hj212_db, "SELECT count(*) FROM dead_letter")[0][0] == 0


def test_a_bad_frame_costs_only_itself(hj212_db: str) -> None:
    when = local_now(3)
    good = upload(mn_of(1), "2011", [{"w01018-Rtd": 55.5, "w01018-Flag": "N"}], when=when)
    bad = {
        "crc_mismatch": good[:-6] + b"0000",
        "length_mismatch": b"##0999" + good[6:],
        "bad_header": b"garbage without a header",
        "unknown_mn": upload("UNKNOWN0001", "2011", [{"w01018-Rtd": 1}], when=when),
        "bad_password": upload(mn_of(1), "2011", [{"w01018-Rtd": 1}], when=when, pw="654321"),
        "wrong_st": upload(mn_of(1), "2011", [{"w01018-Rtd": 1}], when=when, st="31"),
        "unexpected_cn": build_frame(
            Message(st="32", cn="1062", mn=mn_of(1), pw=PW, qn=new_qn(when), flag=5, cp=cp_groups({"RtdInterval": 30}))
        ),
        "bad_time": upload(mn_of(1), "2011", [{"w01018-Rtd": 1}], when=when + timedelta(days=2)),
        "missing_data_time": build_frame(
            Message(st="32", cn="2011", mn=mn_of(1), pw=PW, qn=new_qn(when), flag=5, cp=cp_groups({"w01018-Rtd": 1}))
        ),
        "bad_number": wrap(good[6:-6].replace(b"55.5", b"5x.5")),
        "oversized": b"##" + b"9" * 6000,
    }
    partial = upload(
        mn_of(1),
        "2011",
        [{"w01018-Rtd": 99999, "w01018-Flag": "N"}, {"w01001-Rtd": 7.0}, {"w99999-Rtd": 3.0}],
        when=when + timedelta(minutes=1),
    )

    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        for frame in bad.values():
            await client.send(frame)
        await client.send(partial)
        assert (await client.receive()).cn == "9014"  # the good part of a frame is kept and answered
        await client.send(good)
        answer = await client.receive()
        assert answer.cn == "9014" and answer.qn == new_qn(when)
        peer = f"127.0.0.1:{client.writer.get_extra_info('sockname')[1]}"
        await client.close()
        await wait_db(hj212_db, "SELECT count(*) FROM dead_letter WHERE peer = %s", [(len(bad) + 2,)], (peer,))

    run(hj212_db, scenario, max_frame_bytes=4096)
    reasons = dict(rows(hj212_db, "SELECT reason, count(*) FROM dead_letter GROUP BY reason"))
    assert reasons == {**dict.fromkeys(bad, 1), "out_of_range": 1, "unknown_point": 1}
    assert rows(hj212_db, "SELECT detail FROM dead_letter WHERE reason = 'unknown_point'") == [
        ("CN 2011: no point mapped for w99999",)
    ]
    assert rows(hj212_db, "SELECT site_code, device_code, topic FROM dead_letter WHERE reason = 'bad_password'")[0][
        1:
    ] == ("ww-logger-001", f"hj212/{mn_of(1)}/2011")
    cod = point_id(hj212_db, "ww-logger-001", "cod_mg_l")
    ph = point_id(hj212_db, "ww-logger-001", "ph_ph")
    assert rows(hj212_db, "SELECT point_id, value FROM reading ORDER BY time") == [(cod, 55.5), (ph, 7.0)]


def test_split_upload_equipment_state_run_time_and_status(hj212_db: str) -> None:
    when = local_now(10)
    day = when.replace(hour=0, minute=0) - timedelta(days=1)
    parts = [
        build_frame(
            Message(
                st="32",
                cn="2011",
                mn=mn_of(2),
                pw=PW,
                qn=new_qn(when.replace(microsecond=n * 1000)),
                flag=7,
                pnum=2,
                pno=n + 1,
                cp=cp_groups([{"DataTime": when}, items]),
            )
        )
        for n, items in enumerate([{"w01018-Rtd": 33.3, "w01018-Flag": "C"}, {"w01001-Rtd": 8.1}])
    ]

    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        for part in parts:
            await client.send(part)
            assert (await client.receive()).cn == "9014"
        await client.send(upload(mn_of(2), "2021", [{"SB1-RS": 1}], when=when))
        await client.send(upload(mn_of(2), "2041", [{"SB1-RT": 23.5}], when=day))
        assert [(await client.receive()).cn for _ in range(2)] == ["9014", "9014"]
        await wait_db(hj212_db, "SELECT status FROM device WHERE code = 'ww-logger-002'", [("online",)])
        await client.close()
        await wait_db(hj212_db, "SELECT status FROM device WHERE code = 'ww-logger-002'", [("offline",)])

    run(hj212_db, scenario)
    got = {
        key: (v, q, f)
        for key, v, q, f in rows(
            hj212_db,
            """
        SELECT p.key, r.value, r.quality, f.flag FROM reading r JOIN point p ON p.id = r.point_id
        LEFT JOIN reading_flag f USING (point_id, time)""",
        )
    }
    assert got == {
        "cod_mg_l": (33.3, 2, "C"),
        "ph_ph": (8.1, 0, None),
        "pump_rs_code": (1.0, 0, None),
        "pump_rt_h": (23.5, 0, None),
    }
    assert rows(
        hj212_db,
        "SELECT e.status FROM device_status_event e JOIN device d ON d.id = e.device_id "
        "WHERE d.code = 'ww-logger-002' ORDER BY e.time",
    ) == [("online",), ("offline",)]


def test_time_calibration_request_gets_set_time_and_the_command_is_followed(hj212_db: str) -> None:
    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        request = Message(
            st="32", cn="1013", mn=mn_of(3), pw=PW, qn=new_qn(local_now()), flag=5, cp=cp_groups({"PolId": "w01018"})
        )
        await client.send(build_frame(request))
        notify, command = await client.receive(), await client.receive()
        assert notify.cn == "9013" and notify.qn == request.qn
        assert command.cn == "1012" and command.needs_ack and command.fields["PolId"] == "w01018"
        set_to = command.fields["SystemTime"].replace(tzinfo=SHANGHAI)
        assert abs((set_to - datetime.now(UTC)).total_seconds()) < 120
        for cn, item in (("9011", {"QnRtn": 1}), ("9012", {"ExeRtn": 1})):
            await client.send(
                build_frame(Message(st="91", cn=cn, mn=mn_of(3), pw=PW, qn=command.qn, flag=4, cp=cp_groups(item)))
            )
        for _ in range(200):
            if listener.commands[command.qn].exe_rtn is not None:
                break
            await asyncio.sleep(0.02)
        assert listener.commands[command.qn].qn_rtn == 1 and listener.commands[command.qn].exe_rtn == 1
        await client.close()

    listener = run(hj212_db, scenario)
    assert listener.counters["commands_done"] == 1


def test_configuration_changes_reach_a_running_listener(hj212_db: str, site: str) -> None:
    new_pw = "abc123"

    async def scenario(listener: Hj212Listener) -> None:
        plant = hj212_plant(site, loggers=60)
        plant.sites[0].areas[0].devices[4].hj212.password = new_pw
        await asyncio.to_thread(_apply, hj212_db, plant)
        for _ in range(300):
            if listener.index.loggers[mn_of(4)].password == new_pw:
                break
            await asyncio.sleep(0.05)
        client = await LoggerClient.connect(listener.port)
        await client.send(upload(mn_of(4), "2011", [{"w01018-Rtd": 10}], when=local_now(1), pw=new_pw))
        assert (await client.receive()).cn == "9014"
        await client.close()

    run(hj212_db, scenario)


def _apply(url: str, plant) -> None:
    with psycopg.connect(url) as conn:
        apply_plant(conn=conn, plant=plant, source="test")


def test_a_lost_database_connection_delays_the_answer_but_loses_nothing(hj212_db: str, caplog) -> None:
    when = local_now(30)

    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        await client.send(upload(mn_of(5), "2011", [{"w01018-Rtd": 1.5}], when=when))
        assert (await client.receive()).cn == "9014"
        killed = await asyncio.to_thread(
            rows,
            hj212_db,
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ''
              AND state = 'idle'""",
        )
        assert killed and all(ok for (ok,) in killed)
        await client.send(upload(mn_of(5), "2011", [{"w01018-Rtd": 2.5}], when=when + timedelta(minutes=1)))
        answer = await client.receive()  # after the writer reconnected and committed
        assert answer.cn == "9014" and answer.qn == new_qn(when + timedelta(minutes=1))
        await client.close()

    listener = run(hj212_db, scenario, heartbeat_s=60)
    cod = point_id(hj212_db, "ww-logger-005", "cod_mg_l")
    assert [v for (v,) in rows(hj212_db, "SELECT value FROM reading WHERE point_id = %s ORDER BY time", (cod,))] == [
        1.5,
        2.5,
    ]
    assert listener.snapshot()["db_up"] is True
    assert "database unavailable, holding 1 frame(s)" in caplog.text and "database is back" in caplog.text


def test_a_sender_of_nothing_but_refused_frames_is_disconnected(hj212_db: str) -> None:
    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        for n in range(8):
            try:
                await client.send(b"##0005hello%04d" % n)
            except ConnectionError:
                break
        assert await asyncio.wait_for(client.reader.read(), 30) == b""  # closed by the listener
        await client.close()
        await wait_db(hj212_db, "SELECT count(*) FROM dead_letter", [(5,)])

    listener = run(hj212_db, scenario, max_refusals_in_a_row=5)
    assert listener.counters["connections_closed_for_refusals"] == 1


def test_an_unfinished_split_upload_is_a_dead_letter_with_its_parts(hj212_db: str) -> None:
    when = local_now(12)
    part = build_frame(
        Message(
            st="32",
            cn="2011",
            mn=mn_of(6),
            pw=PW,
            qn=new_qn(when),
            flag=7,
            pnum=3,
            pno=1,
            cp=cp_groups([{"DataTime": when}, {"w01018-Rtd": 5.0}]),
        )
    )

    async def scenario(listener: Hj212Listener) -> None:
        client = await LoggerClient.connect(listener.port)
        await client.send(part)
        assert (await client.receive()).cn == "9014"  # each part is answered on its own
        await client.close()  # the other two never come
        await wait_db(hj212_db, "SELECT reason, payload FROM dead_letter", [("split_incomplete", part[:-2])])

    run(hj212_db, scenario)
    assert rows(hj212_db, "SELECT count(*) FROM reading")[0][0] == 0
