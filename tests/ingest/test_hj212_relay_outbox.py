"""The HJ 212 relay outbox (issue 15): a frame's relayable readings are queued in ``hj212_relay_outbox`` in the
transaction that stores them, the 9014 answer waits for that commit only, and the relay loop publishes them
(QoS 1) and marks them sent after the broker's PUBACK. A broker outage or a stop between commit and publish
loses nothing: the rows stay unsent and go out when the broker is back or at the next start. Real PostgreSQL,
real brokers, real TCP."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.plantfile import apply_full
from core import embedded
from core.embedded import start_broker
from ingest.__main__ import SafetyStages
from ingest.hj212.listener import Hj212Listener, _Connection
from ingest.hj212.relay import MqttRelay, backlog, purge_sent, send_pending
from ingest.hj212.settings import Hj212Settings
from ingest.hj212.split import Reassembler
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.fuzzing import budget
from tests.ingest.hj212_support import LoggerClient, mn_of, upload
from tests.ingest.test_hj212_relay import _alarm, _full
from tests.support import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextmanager
def _ingest(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[IngestRunner]:
    """The ingest process owning ``site`` with its rules (as ``test_hj212_relay``'s fixture), on ``broker_url``."""
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=_full(site), source="test")
    tag = uuid.uuid4().hex[:8]
    safety = SafetyStages(
        database_url=database_url, mqtt_url=broker_url, secret="test-secret", client_id=f"ingest-{tag}"
    )
    safety.standby_notifier = False
    runner = IngestRunner(
        database_url=database_url,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"ingest-{tag}", sites=[site]),
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
    )
    safety.start()
    runner.start()
    try:
        wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
        yield runner
    finally:
        runner.stop()
        safety.stop()


@pytest.fixture
def ingest(database_url: str, broker_url: str, site: str, tmp_path: Path) -> Iterator[IngestRunner]:
    with _ingest(database_url, broker_url, site, tmp_path) as runner:
        yield runner


def _outbox(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT site, device, topic, payload, sent_at IS NOT NULL, attempts, last_error "
            "FROM hj212_relay_outbox ORDER BY id"
        ).fetchall()


class _Unreachable:
    """A relay whose broker is gone (the state between a commit and a crash, as far as the outbox can tell)."""

    def __init__(self) -> None:
        self.calls = 0

    def is_connected(self) -> bool:
        self.calls += 1
        return False

    def publish_each(self, messages, timeout_s):  # pragma: no cover - never called while not connected
        raise AssertionError("published while not connected")


def _settings(**extra) -> Hj212Settings:
    return Hj212Settings(host="127.0.0.1", port=0, heartbeat_s=0.2, relay_retry_s=0.1, relay_poll_s=0.2, **extra)


async def _send_cod(port: int, values: list[tuple[float, datetime]]) -> None:
    client = await LoggerClient.connect(port)
    for value, when in values:
        await client.send(upload(mn_of(0), "2011", [{"w01018-Rtd": value, "w01018-Flag": "N"}], when=when))
        assert (await client.receive()).cn == "9014"  # answered on commit, not on the broker
    await client.close()


def test_a_stop_after_commit_before_publish_leaves_the_rows_and_the_next_start_relays_them(
    ingest, database_url: str, broker_url: str, site: str
) -> None:
    now = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)
    down = _Unreachable()

    async def first() -> Hj212Listener:
        listener = Hj212Listener(database_url=database_url, relay=down, settings=_settings())
        await listener.start()
        try:
            await _send_cod(listener.port, [(40.0, now - timedelta(minutes=2)), (350.0, now - timedelta(minutes=1))])
            await asyncio.to_thread(listener._housekeep)
        finally:
            await listener.stop()
        return listener

    stopped = asyncio.run(first())
    rows = _outbox(database_url)
    assert [(r[0], r[1], r[4]) for r in rows] == [(site, "ww-logger-000", False)] * 2
    assert all(r[2] == f"ehs/v1/{site}/ww-logger-000/telemetry" and r[6] == "broker not connected" for r in rows)
    assert [list(orjson.loads(r[3])[0]["values"].values()) for r in rows] == [[40.0], [350.0]]
    assert down.calls >= 1 and stopped.counters["relayed"] == 0
    assert stopped.snapshot()["relay_unsent"] == 2
    assert _alarm(database_url, site) is None  # stored, not judged yet

    relay = MqttRelay(broker_url, client_id=f"hj212-relay-{uuid.uuid4().hex[:8]}")
    relay.start()

    async def second() -> Hj212Listener:
        listener = Hj212Listener(database_url=database_url, relay=relay, settings=_settings())
        await listener.start()
        try:
            await asyncio.to_thread(wait_for, lambda: all(r[4] for r in _outbox(database_url)), message="sent")
        finally:
            await listener.stop()
        return listener

    try:
        restarted = asyncio.run(second())
    finally:
        relay.stop()
    assert restarted.counters["relayed"] == 2
    severity, _priority, value, *_ = wait_for(lambda: _alarm(database_url, site), message="the COD alarm")
    assert (severity, value) == (3, 350.0)


def _restart_mosquitto(state: Path) -> subprocess.Popen:
    conf = state / "mosquitto.conf"
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(next(line.split()[1] for line in conf.read_text().splitlines() if line.startswith("listener")))
    embedded.wait_for_port("127.0.0.1", port, proc=proc)
    return proc


def test_frames_while_the_broker_is_down_stay_unsent_and_are_relayed_and_judged_once_it_is_back(
    database_url: str, site: str, tmp_path: Path
) -> None:
    broker = start_broker(tmp_path / "broker", prefer="mosquitto")
    restarted: list[subprocess.Popen] = []
    now = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)

    async def scenario(relay: MqttRelay) -> Hj212Listener:
        listener = Hj212Listener(database_url=database_url, relay=relay, settings=_settings(relay_timeout_s=0.5))
        await listener.start()
        try:
            await _send_cod(listener.port, [(120.0, now - timedelta(minutes=3)), (650.0, now)])
            await asyncio.to_thread(wait_for, lambda: any(r[5] for r in _outbox(database_url)), message="a try")
            rows = _outbox(database_url)
            assert len(rows) == 2 and not any(r[4] for r in rows)
            await asyncio.to_thread(listener._housekeep)
            assert listener.snapshot()["relay_unsent"] == 2
            restarted.append(_restart_mosquitto(tmp_path / "broker"))
            await asyncio.to_thread(
                wait_for, lambda: all(r[4] for r in _outbox(database_url)), timeout=90, message="all sent"
            )
            await asyncio.to_thread(listener._housekeep)
        finally:
            await listener.stop()
        return listener

    try:
        with _ingest(database_url, broker.url, site, tmp_path):
            relay = MqttRelay(broker.url, client_id=f"hj212-relay-{uuid.uuid4().hex[:8]}")
            relay.start()
            try:
                broker.stop()
                wait_for(lambda: not relay.is_connected(), message="the relay to see the broker gone")
                listener = asyncio.run(scenario(relay))
            finally:
                relay.stop()
            assert listener.counters["relayed"] == 2 and listener.counters["relay_unconfirmed"] >= 2
            assert listener.snapshot()["relay_unsent"] == 0
            # ingest, reconnected to the restarted broker, judged both: the later, critical value is the alarm's
            alarm = wait_for(
                lambda: (a := _alarm(database_url, site)) is not None and a[2] == 650.0 and a,
                timeout=60,
                message="the critical COD alarm",
            )
            assert (alarm[0], alarm[2]) == (4, 650.0)
    finally:
        for proc in restarted:
            proc.terminate()
            proc.wait(10)


def test_two_passes_never_claim_the_same_row_and_retention_keeps_unsent_rows(database_url: str) -> None:
    class Slow:
        def __init__(self) -> None:
            self.seen: list[bytes] = []

        def is_connected(self) -> bool:
            return True

        def publish_each(self, messages, timeout_s):
            self.seen += [payload for _topic, payload in messages]
            return [True] * len(messages)

    with psycopg.connect(database_url, autocommit=True) as a, psycopg.connect(database_url, autocommit=True) as b:
        a.execute(
            "INSERT INTO hj212_relay_outbox (site, device, topic, payload) "
            "SELECT 's', 'd', 't', convert_to(g::text, 'utf8') FROM generate_series(1, 10) g"
        )
        first, second = Slow(), Slow()
        with a.transaction():  # a holds its claim while b passes
            claimed = a.execute(
                "SELECT id FROM hj212_relay_outbox WHERE sent_at IS NULL ORDER BY id LIMIT 4 FOR UPDATE SKIP LOCKED"
            ).fetchall()
            done = send_pending(b, second, batch=100, timeout_s=1)
        assert len(claimed) == 4 and done.claimed == done.sent == 6
        assert send_pending(a, first, batch=100, timeout_s=1).sent == 4
        assert sorted(first.seen + second.seen) == sorted(str(i).encode() for i in range(1, 11))
        assert backlog(a)[0] == 0
        a.execute("INSERT INTO hj212_relay_outbox (site, device, topic, payload) VALUES ('s', 'd', 't', '')")
        a.execute("UPDATE hj212_relay_outbox SET sent_at = now() - interval '8 days' WHERE payload <> ''")
        a.execute("UPDATE hj212_relay_outbox SET created_at = now() - interval '9 days' WHERE payload = ''")
        assert purge_sent(a, older_than=timedelta(days=7)) == 10
        count, age = backlog(a)
        assert count == 1 and age > 8 * 86400


# --- property: the outbox holds exactly the relayable readings of any frame ----------------------------------

_NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_FIELDS = ["w01018", "w01001", "w00000", "w99999"]  # COD, pH, flow (mapped), and one the plant does not map


class _Writer:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


@pytest.fixture(scope="module")
def outbox_listener(pg_admin_url: str, template_db: str):
    from tests.conftest import _create_database, _drop_database

    name = f"ehs_test_{uuid.uuid4().hex[:10]}"
    url = _create_database(pg_admin_url, name, template=template_db)
    site = f"r{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(url) as conn:
            apply_full(conn=conn, full=_full(site), source="test")
        listener = Hj212Listener(database_url=url, relay=_Unreachable(), settings=_settings(), clock=lambda: _NOW)
        listener._load()
        yield url, listener
        if listener._conn is not None:
            listener._conn.close()
    finally:
        _drop_database(pg_admin_url, name)


_ITEM = st.tuples(
    st.sampled_from(_FIELDS),
    st.floats(-50, 3000, allow_nan=False).map(lambda v: round(v, 3)) | st.none(),
    st.sampled_from(["N", "T", "C", "M", "F", "D", "S", "B"]),
)
_FRAME = st.tuples(
    st.sampled_from(["2011", "2051", "2061"]),
    st.integers(-3, 60 * 60 * 30),  # seconds before now: a little ahead, within and beyond the 24 h
    st.lists(_ITEM, min_size=1, max_size=6, unique_by=lambda i: i[0]),
)


@budget(40)
@given(frames=st.lists(_FRAME, min_size=1, max_size=8))
def test_the_outbox_holds_exactly_the_relayable_readings_of_arbitrary_frames(outbox_listener, frames) -> None:
    """Whatever frames arrive, after their commit the outbox's messages carry exactly the stored readings that
    are relayable: a mapped point, a value, flag N or T (or none), data time within ``relay_max_age_h``."""
    url, listener = outbox_listener
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("hj212_relay_outbox", "reading_flag", "reading", "dead_letter"):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    connection = _Connection("test:1", _Writer(), Reassembler(timeout_s=60))
    local = _NOW.astimezone(SHANGHAI).replace(tzinfo=None)
    works = []
    for cn, seconds, items in frames:
        when = local - timedelta(seconds=seconds)
        suffix = "Rtd" if cn == "2011" else "Avg"
        cp = []
        for field, value, flag in items:
            group = {f"{field}-Flag": flag}
            if value is not None:
                group[f"{field}-{suffix}"] = value
            cp.append(group)
        work = listener._handle(upload(mn_of(0), cn, cp, when=when), connection)
        if work is not None:
            works.append(work)
    if works:
        listener._commit(works)
    with psycopg.connect(url) as conn:
        outbox = conn.execute("SELECT topic, payload FROM hj212_relay_outbox").fetchall()
        stored = conn.execute(
            "SELECT p.key, r.time, r.value FROM reading r JOIN point p ON p.id = r.point_id "
            "LEFT JOIN reading_flag f ON f.point_id = r.point_id AND f.time = r.time "
            "WHERE r.value IS NOT NULL AND coalesce(f.flag, 'N') IN ('N', 'T') AND r.time >= %s",
            (_NOW - timedelta(hours=24),),
        ).fetchall()
    relayed = []
    for topic, payload in outbox:
        assert topic.endswith("/ww-logger-000/telemetry")
        for item in orjson.loads(payload):
            when = datetime.fromtimestamp(item["ts"] / 1000, UTC)
            relayed += [(key, when, value) for key, value in item["values"].items()]
    assert sorted(relayed) == sorted(stored)


def test_a_listener_killed_after_commit_leaves_its_rows_for_the_next_one(
    ingest, database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    """The listener process (``python -m ingest.hj212``) with no broker to reach answers the frames (committed,
    outbox rows included) and is killed (SIGKILL, no clean stop); a listener started afterwards relays them."""
    import os
    import signal
    import sys

    port = embedded.free_port()
    env = {
        **os.environ,
        "EHS_DATABASE_URL": database_url,
        "EHS_MQTT_URL": f"mqtt://127.0.0.1:{embedded.free_port()}",  # nothing listens there
        "EHS_HJ212_HOST": "127.0.0.1",
        "EHS_HJ212_PORT": str(port),
    }
    log = (tmp_path / "listener.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ingest.hj212"], env=env, stdout=log, stderr=subprocess.STDOUT)
    now = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)
    try:
        embedded.wait_for_port("127.0.0.1", port, proc=proc)
        asyncio.run(_send_cod(port, [(30.0, now - timedelta(minutes=2)), (420.0, now - timedelta(minutes=1))]))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()
    rows = _outbox(database_url)
    assert [(r[1], r[4]) for r in rows] == [("ww-logger-000", False)] * 2, (tmp_path / "listener.log").read_text()

    relay = MqttRelay(broker_url, client_id=f"hj212-relay-{uuid.uuid4().hex[:8]}")
    relay.start()

    async def next_start() -> Hj212Listener:
        listener = Hj212Listener(database_url=database_url, relay=relay, settings=_settings())
        await listener.start()
        try:
            await asyncio.to_thread(wait_for, lambda: all(r[4] for r in _outbox(database_url)), message="sent")
        finally:
            await listener.stop()
        return listener

    try:
        assert asyncio.run(next_start()).counters["relayed"] == 2
    finally:
        relay.stop()
    severity, _priority, value, *_ = wait_for(lambda: _alarm(database_url, site), message="the COD alarm")
    assert (severity, value) == (3, 420.0)
