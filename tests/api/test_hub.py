"""The live feed's per-client buffer: readings coalesce (latest wins), alarm events queue in order up to a
bound, beyond which the client is marked too slow (no partial record)."""

from __future__ import annotations

import asyncio

from api.policy import Principal, Role, Scope
from api.subscriptions import CHUNK, Session


def _session(capacity: int = 3) -> Session:
    session = Session(Principal("user", 1, "viewer", Role.VIEWER, Scope(frozenset({1}))), alarm_capacity=capacity)
    session.points = set(range(1, 3001))
    return session


def test_readings_for_a_slow_client_coalesce_latest_wins() -> None:
    async def run() -> list:
        session = _session()
        for value in range(500):
            session.offer_readings([{"point_id": 7, "value": float(value)}, {"point_id": 9999, "value": 1.0}])
        return await session.next_messages()

    messages = asyncio.run(run())
    assert messages == [{"type": "readings", "items": [{"point_id": 7, "value": 499.0}]}]


def test_alarm_events_come_first_in_order_then_readings_in_chunks() -> None:
    async def run() -> list:
        session = _session()
        session.offer_readings([{"point_id": p, "value": 1.0} for p in range(1, 2501)])
        session.offer_alarm({"alarm_id": 1})
        session.offer_alarm({"alarm_id": 2})
        session.offer_control({"type": "gap"})
        return await session.next_messages()

    messages = asyncio.run(run())
    assert [m["type"] for m in messages] == ["gap", "alarm", "alarm", "readings", "readings", "readings"]
    assert [m["event"]["alarm_id"] for m in messages[1:3]] == [1, 2]
    assert [len(m["items"]) for m in messages[3:]] == [CHUNK, CHUNK, 500]


def test_too_many_waiting_alarm_events_mark_the_client_too_slow() -> None:
    async def run() -> Session:
        session = _session(capacity=3)
        for n in range(4):
            session.offer_alarm({"alarm_id": n})
        return session

    session = asyncio.run(run())
    assert session.gone.is_set() and "too slow" in session.overflow
    assert session._alarms == type(session._alarms)()  # nothing partial is left to send
