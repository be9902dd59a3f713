"""Interlocks over a real broker: the alerts worker signs and sends, simulated devices verify and acknowledge,
acknowledgements move the commands on; a device with the wrong key rejects; a silent device gets the bounded
retries (same id, seen on the broker) and then a critical alarm; a drill never reaches a real device; and the
ingest stage publishes an interlock before anything is written."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import pytest

from alerts import commands as machine
from alerts import flows
from alerts.models import Actor, NotFound
from alerts.settings import AlertSettings
from alerts.worker import AlertsWorker
from core import mqtt as mq
from core import topics
from ingest.__main__ import SafetyStages
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from simulator.runner import SimulatorRunner
from tests.alerts.helpers import SAFETY, apply, full_plant
from tests.support import Publisher, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]

SECRET = "test-secret"
FAST = {
    **SAFETY,
    "alarms": {
        **SAFETY["alarms"],
        "defaults": {"accept_within_s": 0.5, "done_within_s": 5, "command_retries": 2, "command_ttl_s": 30},
    },
}
OP = Actor("zhang.wei", "operator")


class Spy:
    """Everything published on the site's command topics."""

    def __init__(self, broker_url: str, site: str) -> None:
        address = mq.BrokerAddress.parse(broker_url)
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mq.new_client(address, protocol=mq.detect_protocol(address))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_connect = lambda c, *_: c.subscribe(f"{topics.PREFIX}/{site}/+/{topics.CMD}", qos=1)
        mq.connect_blocking(self.client, address)
        assert ready.wait(10)

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic.split("/")[3], orjson.loads(msg.payload)))

    def to(self, device: str) -> list[dict]:
        with self._lock:
            return [body for dev, body in self.messages if dev == device]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def system(database_url: str, broker_url: str, site: str) -> Iterator[dict]:
    with psycopg.connect(database_url) as conn:
        apply(conn, site, FAST)
    worker = AlertsWorker(
        database_url=database_url,
        mqtt_url=broker_url,
        secret=SECRET,
        settings=AlertSettings(client_id=f"alerts-{uuid.uuid4().hex[:8]}", tick_s=0.1),
    )
    spy = Spy(broker_url, site)
    worker.start()
    started: list = [worker, spy]
    yield {"worker": worker, "spy": spy, "db": database_url, "broker": broker_url, "started": started}
    for thing in reversed(started):
        (thing.close if hasattr(thing, "close") else thing.stop)()


def _devices(broker_url: str, site: str, secret: str = SECRET) -> SimulatorRunner:
    sim = SimulatorRunner(
        full_plant(site).plant, broker_url, secret=secret, rate_scale=50.0, dropout=0.0, outage_per_hour=0.0
    )
    sim.start()
    return sim


def _command(db: str, command_id) -> dict:
    """The command as recorded (no status while ingest has published it but not yet recorded it)."""
    with psycopg.connect(db) as conn:
        try:
            return machine.get_command(conn=conn, command_id=command_id)
        except NotFound:
            return {"status": None}


def _request(db: str, site: str, device: str = "fan-01", action: str = "exhaust_fan.on") -> str:
    with psycopg.connect(db) as conn:
        return flows.request_command(
            conn=conn, site=site, device=device, action=action, actor=OP, reason="test", now=datetime.now(UTC)
        )["id"]


def _failed_alarm(db: str, site: str, device: str) -> tuple | None:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT state, priority FROM alarm WHERE rule = 'interlock.failed' AND source = %s AND closed_at IS NULL",
            (f"{site}/formation/{device}",),
        ).fetchone()


def test_a_command_is_signed_sent_accepted_and_done(system: dict, site: str) -> None:
    system["started"].append(_devices(system["broker"], site))
    command_id = _request(system["db"], site)
    done = wait_for(
        lambda: (c := _command(system["db"], command_id))["status"] == "done" and c,
        timeout=30,
        message="the fan to confirm",
    )
    assert [e["status"] for e in done["events"]] == ["pending", "issued", "accepted", "done"]
    assert done["device_state"]["on"] is True
    [sent] = system["spy"].to("fan-01")
    assert sent["id"] == str(command_id) and len(sent["sig"]) == 64 and sent["drill"] is False


def test_a_device_with_another_key_rejects_and_a_critical_alarm_follows(system: dict, site: str) -> None:
    system["started"].append(_devices(system["broker"], site, secret="not-the-service-secret"))
    command_id = _request(system["db"], site)
    rejected = wait_for(
        lambda: (c := _command(system["db"], command_id))["status"] == "rejected" and c,
        timeout=30,
        message="the rejection",
    )
    assert "bad signature" in rejected["detail"]
    assert _failed_alarm(system["db"], site, "fan-01") == ("active_unacked", 4)


def test_a_silent_device_gets_bounded_retries_then_times_out(system: dict, site: str) -> None:
    command_id = _request(system["db"], site)  # no device answers
    timed_out = wait_for(
        lambda: (c := _command(system["db"], command_id))["status"] == "timed_out" and c,
        timeout=30,
        message="the time-out",
    )
    sent = system["spy"].to("fan-01")
    assert len(sent) == 3 and {s["id"] for s in sent} == {str(command_id)}  # 1 + 2 retries, the same command
    assert {s["sig"] for s in sent} == {sent[0]["sig"]}
    assert timed_out["attempts"] == 3
    assert _failed_alarm(system["db"], site, "fan-01") == ("active_unacked", 4)


def test_a_drill_commands_only_simulated_devices(system: dict, site: str) -> None:
    system["started"].append(_devices(system["broker"], site))
    with psycopg.connect(system["db"]) as conn:
        alarm = flows.start_drill(
            conn=conn,
            site=site,
            area="formation",
            level=1,
            actor=Actor("li.na", "ehs_manager"),
            reason="drill",
            now=datetime.now(UTC),
        )
    sim_id = next(c["id"] for c in alarm["commands"] if c["device"] == "spr-sim")
    done = wait_for(
        lambda: (c := _command(system["db"], sim_id))["status"] == "done" and c,
        timeout=30,
        message="the simulated sprinkler",
    )
    assert done["drill"] and done["payload"]["drill"] is True
    # the worker handled every command of the drill before the simulated one was sent: the real sprinkler's was
    # never published (it is on record as skipped)
    assert system["spy"].to("spr-01") == [] and system["spy"].to("spr-sim")[0]["drill"] is True
    real = next(c for c in alarm["commands"] if c["device"] == "spr-01")
    assert _command(system["db"], real["id"])["status"] == "skipped"


def test_ingest_publishes_the_interlock_before_recording_and_the_device_confirms(
    system: dict, site: str, tmp_path: Path
) -> None:
    system["started"].append(_devices(system["broker"], site))
    safety = SafetyStages(
        database_url=system["db"], mqtt_url=system["broker"], secret=SECRET, client_id=f"ingest-{uuid.uuid4().hex[:8]}"
    )
    runner = IngestRunner(
        database_url=system["db"],
        mqtt_url=system["broker"],
        spool_dir=tmp_path / "spool",
        settings=IngestSettings(client_id=f"ingest-{uuid.uuid4().hex[:8]}", session_expiry_s=60),
        evaluate=safety.evaluate,
        act=safety.act,
        tick=safety.tick,
        record_extra=safety.record,
        on_index=safety.on_index,
    )
    safety.start()
    runner.start()
    system["started"] += [safety, runner]
    wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
    publisher = Publisher(system["broker"])
    try:
        publisher.publish(topics.device_topic(site, "gas-01", topics.TELEMETRY), orjson.dumps({"h2_ppm": 900.0}))
        [sent] = wait_for(lambda: system["spy"].to("fan-01"), timeout=30, message="the interlock on the broker")
        assert sent["alarm_id"] is None  # sent before the alarm existed; linked when recorded
        command = wait_for(
            lambda: (c := _command(system["db"], sent["id"]))["status"] == "done" and c,
            timeout=30,
            message="the fan to confirm",
        )
        assert command["origin"] == "auto" and command["alarm_id"] is not None and command["finding_id"]
    finally:
        publisher.close()
