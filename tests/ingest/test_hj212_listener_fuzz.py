"""Arbitrary input over TCP never stops the HJ 212 listener: every line is a dead letter, good frames still pass."""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.plant import apply_plant
from ingest.hj212 import parse_frame, wrap
from ingest.hj212.listener import Hj212Listener
from ingest.hj212.settings import Hj212Settings
from tests.ingest.hj212_support import hj212_plant, mn_of, upload

pytestmark = pytest.mark.db


class Running:
    """A listener on its own event loop thread for the length of a test."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.listener = Hj212Listener(
            database_url=url, settings=Hj212Settings(host="127.0.0.1", port=0, max_frame_bytes=2048)
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running(database_url: str, site: str):
    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=hj212_plant(site, loggers=1), source="test")
    server = Running(database_url)
    yield server, database_url
    server.close()


lines = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: b"##" + b),
        st.binary(max_size=300).map(wrap),  # valid framing, arbitrary segment
        st.text(max_size=120).map(lambda t: wrap(f"ST=32;CN=2011;PW=123456;MN={mn_of(0)};Flag=5;CP=&&{t}&&")),
    ),
    min_size=1,
    max_size=6,
)


def test_arbitrary_lines_become_dead_letters_and_the_connection_goes_on(running) -> None:
    server, url = running
    counter = iter(range(10**6))

    @given(lines)
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def check(chunks: list[bytes]) -> None:
        stream = b"\r\n".join(chunks) + b"\r\n"
        expected = sum(1 for piece in stream.split(b"\r\n")[:-1] if piece.strip())
        when = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).replace(tzinfo=None, microsecond=0)
        good = upload(mn_of(0), "2011", [{"w01018-Rtd": 12.5}], when=when - timedelta(seconds=next(counter)))
        with psycopg.connect(url) as conn:
            before = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
        qn = parse_frame(good).qn
        with socket.create_connection(("127.0.0.1", server.listener.port), timeout=30) as sock:
            sock.sendall(stream + good)
            received = b""
            answers = []
            while qn not in [a.qn for a in answers]:  # a fuzzed frame that is valid may be answered first
                data = sock.recv(4096)
                assert data, "the listener closed the connection"
                received += data
                *whole, received = received.split(b"\r\n")
                answers += [parse_frame(frame) for frame in whole]
        assert {a.cn for a in answers} == {"9014"}  # answered after the batch holding it committed
        with psycopg.connect(url) as conn:
            after = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
        assert after - before == expected

    check()
    assert server.listener.counters["rejected_decode_error"] == 0
