"""The alerts worker against hostile acknowledgements (issue 11, item 2), with a real PostgreSQL: a bad ack (NUL,
bad JSON, wrong types, a database refusal of its insert) is a ``bad_ack`` dead letter and the pass goes on: the
other acks are applied, time-outs still happen. An unreachable database stops the pass but keeps the acks.
Includes the ack fuzzing property (item 7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import flows
from alerts.models import Actor
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core import mqtt as mq
from tests.alerts.helpers import apply
from tests.fuzzing import any_json, budget, hostile_payloads, json_bytes, nasty_text, odd_levels, odd_text

pytestmark = [pytest.mark.db, pytest.mark.broker]

OP = Actor("zhang.wei", "operator")


@pytest.fixture
def worker(database_url: str, broker_url: str, site: str) -> Iterator[AlertsWorker]:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    w = AlertsWorker(
        database_url=database_url,
        mqtt_url=broker_url,
        secret="test-secret",
        protocol=mq.MQTTv5,
        settings=AlertSettings(client_id=f"alerts-{uuid.uuid4().hex[:8]}", notify=False),
    )
    yield w
    w.interlock.client.loop_stop()


def _command(conn: psycopg.Connection, site: str, worker: AlertsWorker) -> str:
    """A command issued to fan-01 (sent by the worker's pass)."""
    command_id = flows.request_command(
        conn=conn, site=site, device="fan-01", action="exhaust_fan.on", actor=OP, reason="test", now=datetime.now(UTC)
    )["id"]
    worker.run_once(conn)
    return str(command_id)


def _overdue(conn: psycopg.Connection, site: str, worker: AlertsWorker) -> str:
    """A command past its time to be accepted, with no retries left: the next pass must time it out."""
    command_id = _command(conn, site, worker)
    conn.execute(
        "UPDATE interlock_command SET accept_by = now() - interval '1 minute', attempts = max_attempts WHERE id = %s",
        (command_id,),
    )
    return command_id


def _status(conn: psycopg.Connection, command_id: str) -> str:
    return conn.execute("SELECT status FROM interlock_command WHERE id = %s", (command_id,)).fetchone()[0]


def _ack(worker: AlertsWorker, site: str, device: str, body: bytes | dict) -> None:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    worker.acks.put((f"ehs/v1/{site}/{device}/cmd/ack", payload, datetime.now(UTC), None))


def test_regression_a_nul_in_an_ack_detail_is_stored_escaped_and_the_command_moves_on(
    worker: AlertsWorker, database_url: str, site: str
) -> None:
    """A cmd/ack carrying a NUL failed its insert and aborted the whole pass (logged as "cannot reach the
    database"): the other acks were dropped and time-outs skipped."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        command_id = _command(conn, site, worker)
        overdue = _overdue(conn, site, worker)
        _ack(
            worker,
            site,
            "fan-01",
            b'{"id": "%s", "status": "done", "detail": "ok\\u0000", "state": '
            b'{"on\\u0000": true}}' % command_id.encode(),
        )
        worker.run_once(conn)
        assert _status(conn, command_id) == "done" and _status(conn, overdue) == "timed_out"
        detail = conn.execute("SELECT detail FROM interlock_command WHERE id = %s", (command_id,)).fetchone()[0]
        assert detail == "ok\\x00" and worker.counters["step_errors"] == 0


def test_an_ack_the_database_refuses_is_dead_lettered_and_the_pass_goes_on(
    worker: AlertsWorker, database_url: str, site: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("""CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.detail = 'poison' THEN RAISE EXCEPTION 'poison refused' USING ERRCODE = '22023';
            END IF; RETURN NEW; END $$""")
        conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON interlock_command_event FOR EACH ROW "
            "EXECUTE FUNCTION refuse_poison()"
        )
        first, second = _command(conn, site, worker), _command(conn, site, worker)
        overdue = _overdue(conn, site, worker)
        _ack(worker, site, "fan-01", {"id": first, "status": "accepted", "detail": "poison"})
        _ack(worker, site, "fan-01", b"{not json")
        _ack(worker, site, "fan-01", {"id": 12, "status": ["done"]})
        _ack(worker, site, "fan-01", {"id": second, "status": "done"})
        worker.run_once(conn)
        assert _status(conn, second) == "done" and _status(conn, overdue) == "timed_out"
        assert _status(conn, first) == "issued"
        letters = conn.execute("SELECT reason, detail FROM dead_letter ORDER BY id").fetchall()
        assert [r for r, _ in letters] == ["bad_ack"] * 3
        assert letters[0][1].startswith("refused by the database: InvalidParameterValue: poison refused")
        assert worker.counters["bad_acks"] == 3 and worker.counters["acks"] == 1


def test_acks_taken_when_the_database_goes_away_are_applied_in_the_next_pass(
    worker: AlertsWorker, database_url: str, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        command_id = _command(conn, site, worker)
        _ack(worker, site, "fan-01", {"id": command_id, "status": "done"})
        real = flows.apply_ack

        def gone(**_kw):
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(flows, "apply_ack", gone)
        with pytest.raises(psycopg.OperationalError):
            worker.run_once(conn)
        monkeypatch.setattr(flows, "apply_ack", real)
        assert _status(conn, command_id) == "issued" and conn.execute(
            "SELECT count(*) FROM dead_letter"
        ).fetchone() == (0,)
        worker.run_once(conn)
        assert _status(conn, command_id) == "done"


_ack_bodies = st.one_of(
    hostile_payloads(["id", "status", "detail", "state"]),
    # well formed but for its text: a valid status, device text with NUL, lone surrogates, odd unicode
    st.fixed_dictionaries(
        {
            "id": st.uuids().map(str),
            "status": st.sampled_from(["accepted", "done", "failed"]),
            "detail": nasty_text,
            "state": st.dictionaries(nasty_text, any_json, max_size=3),
        }
    ).map(json_bytes),
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.uuids().map(str), odd_text, any_json),
            "status": st.one_of(st.sampled_from(["accepted", "done", "rejected", "failed"]), odd_text, any_json),
        },
        optional={"detail": st.one_of(odd_text, any_json), "state": any_json},
    ).map(json_bytes),
)
_ack_topics = st.one_of(
    st.sampled_from(["fan-01", "spr-01", "gas-01", "ghost"]).map(lambda d: (d, "cmd/ack")),
    st.just(("fan-01", "cmd/ack")),
    st.tuples(odd_levels, st.sampled_from(["cmd/ack", "cmd", "telemetry", "cmd/ack/x"])),
)


@budget(25)
@given(st.lists(st.tuples(_ack_topics, _ack_bodies), min_size=1, max_size=8), st.integers(0, 8))
def test_fuzz_hostile_acks_never_stop_the_pass(
    worker: AlertsWorker, database_url: str, site: str, hostile: list, position: int
) -> None:
    """For any mix of hostile acks with one good one: the good one is applied, an overdue command still times
    out, every hostile ack is applied or dead-lettered (``bad_ack``), no step fails."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        command_id, overdue = _command(conn, site, worker), _overdue(conn, site, worker)
        before = dict(worker.counters)
        letters = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
        entries = [
            (f"ehs/v1/{site if i % 3 else 'other'}/{dev}/{channel}", body)
            for i, ((dev, channel), body) in enumerate(hostile)
        ]
        entries.insert(
            min(position, len(entries)),
            (f"ehs/v1/{site}/fan-01/cmd/ack", orjson.dumps({"id": command_id, "status": "done"})),
        )
        for topic, body in entries:
            worker.acks.put((topic, body, datetime.now(UTC) - timedelta(milliseconds=1), None))
        worker.run_once(conn)
        assert _status(conn, command_id) == "done" and _status(conn, overdue) == "timed_out"
        applied = worker.counters["acks"] - before["acks"]
        bad = worker.counters["bad_acks"] - before["bad_acks"]
        assert applied + bad == len(entries) and worker.counters["step_errors"] == 0
        assert conn.execute("SELECT count(*) FROM dead_letter WHERE reason = 'bad_ack'").fetchone()[0] == letters + bad
