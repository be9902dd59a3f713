"""The alerts worker (``python -m alerts``): the clock-driven and MQTT-driven half of alarm handling.

One loop, woken by acknowledgements and by ``LISTEN`` notifications, at least every ``tick_s``:

* acknowledgements from ``.../cmd/ack`` move commands on (a device may only confirm its own commands; a bad
  acknowledgement goes to ``dead_letter``, never silently away). Each acknowledgement stands alone: one that is
  malformed or that the database refuses for its data is dead-lettered (``bad_ack``) and the pass goes on; only
  an unreachable database stops the pass, and then the acknowledgements taken are kept for the next one;
* every step below runs even if an earlier one failed on its data (logged with its name);
* pending commands (manual, drill, or not sent by ingest) are signed and published; unconfirmed ones are sent
  again (same id: idempotent at the device) up to the configured retries, then time out with a critical alarm;
* shelving expires, floods end;
* alarm events are published on ``ehs/v1/{site}/alarms`` in order, at least once (consumers de-duplicate by
  ``event_id``).

* notifications: the outbox is delivered and alarms escalated by ``alerts.notifications.notifier`` (its own threads).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from datetime import datetime, timedelta

import orjson
import psycopg

from alerts import commands as machine
from alerts import config_store, flows, management, service, store, watchdog
from alerts.config import AlertConfig
from alerts.interlock import MqttInterlock
from alerts.notifications.notifier import Notifier
from alerts.settings import AlertSettings
from core import channels, db, identity, topics
from core import mqtt as mq
from core.clock import Clock, SystemClock
from core.commands import new_command
from core.db import BackgroundConnection, heartbeat, last_heartbeat, sign_off
from core.keys import Keyring, current
from core.liveness import Liveness
from core.text import describe, storable, storable_or_none

_LOGGER = logging.getLogger(__name__)
_CHANNELS = (channels.ALARMS, store.COMMAND_CHANNEL, "interlock_bypass", channels.CONFIG)
#: An event id missing this long after later ones were recorded belongs to a rolled-back transaction.
_GAP_WAIT = timedelta(seconds=5)


class AlertsWorker:
    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        secret: str | Keyring,
        settings: AlertSettings | None = None,
        clock: Clock | None = None,
        protocol: int | None = None,
        interlock_secret: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings or AlertSettings()
        self.clock = clock or SystemClock()
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = self.clock.now()
        self.acks: queue.Queue[tuple[str, bytes, datetime, object]] = queue.Queue(maxsize=50_000)
        self.interlock = MqttInterlock(
            mq.BrokerAddress.parse(mqtt_url),
            secret=interlock_secret or current(secret),
            protocol=protocol,
            client_id=self.settings.client_id,
            on_ack=self._on_ack,
        )
        self.counters = {
            "acks": 0,
            "acks_dropped": 0,
            "bad_acks": 0,
            "sent": 0,
            "retries": 0,
            "timed_out": 0,
            "published_events": 0,
            "loops": 0,
            "step_errors": 0,
        }
        #: Acknowledgements taken when the database went away: applied first in the next pass.
        self._unapplied: list[tuple[str, bytes, datetime, object]] = []
        self._config: AlertConfig | None = None
        self._config_key: tuple | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_heartbeat = 0.0
        self.liveness = Liveness(stuck_after=self.settings.stuck_s)
        self._born = time.monotonic()
        self.notifier = (
            Notifier(
                database_url=database_url, secret=secret, settings=self.settings, clock=self.clock, config=self.config
            )
            if self.settings.notify
            else None
        )
        if self.notifier is not None:
            self.notifier.liveness = self.liveness

    # --- MQTT (paho network thread: keep it short) -------------------------------------------------------------

    def _on_ack(self, topic: str, payload: bytes, properties: object = None) -> None:
        try:
            self.acks.put_nowait((topic, payload, self.clock.now(), properties))
        except queue.Full:
            self.counters["acks_dropped"] += 1  # the command then times out and raises its alarm
        self._wake.set()

    # --- one pass ----------------------------------------------------------------------------------------------

    def config(self, conn: psycopg.Connection) -> AlertConfig:
        key = db.execute(
            conn, "SELECT (SELECT max(id) FROM alarm_config), (SELECT max(id) FROM config_revision)"
        ).fetchone()
        if self._config is None or key != self._config_key:
            self._config, self._config_key = config_store.load_config(conn=conn), key
        return self._config

    def run_once(self, conn: psycopg.Connection) -> None:
        """Everything due now, each step in its own transaction (``conn`` is in autocommit mode)."""
        now = self.clock.now()
        config = self.config(conn)
        self._step("acknowledgements", lambda: self._take_acks(conn))
        self._step("reconcile", lambda: self._in_transaction(conn, lambda: flows.reconcile(conn=conn, now=now)))
        self._step("send", lambda: self._send_pending(conn, config, now))
        self._step("retry", lambda: self._retry(conn, now))

        def time_out() -> None:
            self.counters["timed_out"] += len(flows.time_out(conn=conn, now=now))
            flows.cancel_stale(conn=conn, now=now, ttl=timedelta(seconds=config.defaults.command_ttl_s))

        self._step("time-outs", lambda: self._in_transaction(conn, time_out))
        self._step("shelving", lambda: self._in_transaction(conn, lambda: service.expire_shelving(conn=conn, now=now)))
        self._step(
            "floods",
            lambda: self._in_transaction(conn, lambda: management.end_floods(conn=conn, now=now, config=config)),
        )
        if self.settings.publish_alarms:
            self._step("publish", lambda: self._publish_events(conn, now))
        self.counters["loops"] += 1

    @staticmethod
    def _in_transaction(conn: psycopg.Connection, work) -> None:
        with conn.transaction():
            work()

    def _step(self, name: str, work) -> None:
        """Run one step of the pass; a failure other than a lost database is logged and the pass goes on."""
        try:
            work()
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the database is unreachable: the whole pass waits
        except Exception:  # noqa: BLE001 - one step's bad data must not skip time-outs, retries, shelving...
            self.counters["step_errors"] += 1
            _LOGGER.exception("alerts worker step %r failed; the other steps go on", name)

    def _take_acks(self, conn: psycopg.Connection) -> None:
        taken, self._unapplied = self._unapplied, []
        while len(taken) < 1000:
            try:
                taken.append(self.acks.get_nowait())
            except queue.Empty:
                break
        for i, (topic, payload, at, properties) in enumerate(taken):
            try:
                self._apply_ack(conn, topic, payload, at, properties)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._unapplied = taken[i:]  # the database went away: keep them for the next pass
                raise

    def _apply_ack(
        self, conn: psycopg.Connection, topic: str, payload: bytes, at: datetime, properties: object = None
    ) -> None:
        """Apply one acknowledgement, or keep it in ``dead_letter`` with the reason it was not applied."""
        parsed = topics.parse(topic) if isinstance(topic, str) else None
        try:
            if parsed is None or parsed.channel != topics.CMD_ACK:
                raise ValueError("not an acknowledgement topic")
            why = identity.sender_refusal(parsed.site, parsed.device, properties, self.settings.sender_property)
            if why is not None:
                raise ValueError(why)
            body = orjson.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("an acknowledgement is a JSON object")
            with conn.transaction():
                flows.apply_ack(conn=conn, site=parsed.site, device=parsed.device, ack=body, now=at)
            self.counters["acks"] += 1
            return
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except (ValueError, orjson.JSONDecodeError) as exc:
            detail = str(exc)
        except psycopg.Error as exc:  # its data refused: this acknowledgement only
            detail = f"refused by the database: {describe(exc)}"
        except Exception as exc:  # noqa: BLE001 - a bug on one acknowledgement must not drop the others
            _LOGGER.exception("applying an acknowledgement on %s failed", storable(topic, 200))
            detail = f"not applied: {describe(exc)}"
        self.counters["bad_acks"] += 1
        try:
            conn.execute(
                "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, detail, "
                "site_code, device_code) VALUES (%s, %s, %s, %s, 'bad_ack', %s, %s, %s)",
                (
                    at,
                    storable(topic, 1000),
                    bytes(payload[:65536]),
                    len(payload),
                    storable(detail, 500),
                    storable_or_none(parsed.site if parsed else None, 200),
                    storable_or_none(parsed.device if parsed else None, 200),
                ),
            )
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error:
            _LOGGER.exception(
                "a bad acknowledgement on %s could not even be dead-lettered (%s)",
                storable(topic, 200),
                storable(detail, 300),
            )

    def _send_pending(self, conn: psycopg.Connection, config: AlertConfig, now: datetime) -> None:
        ttl = timedelta(seconds=config.defaults.command_ttl_s)
        with conn.transaction():
            for command in machine.pending(conn=conn):
                target = config.actuator(command["site"], command["device"])
                if command["drill"] and (target is None or not target.simulated):
                    # second line of defence: a drill never reaches a real device, whoever queued it
                    conn.execute(
                        "UPDATE interlock_command SET status = 'skipped', finished_at = %s, detail = "
                        "'drill: a real device is never commanded in a drill' WHERE id = %s",
                        (now, command["id"]),
                    )
                    continue
                payload = new_command(
                    action=command["action"],
                    params=command["params"],
                    issued_at=now,
                    ttl=ttl,
                    alarm_id=command["alarm_id"],
                    drill=command["drill"],
                    command_id=str(command["id"]),
                )
                body = self.interlock.send(command["site"], command["device"], payload)
                machine.mark_issued(conn=conn, command=command, payload=body, now=now)
                self.counters["sent"] += 1

    def _retry(self, conn: psycopg.Connection, now: datetime) -> None:
        with conn.transaction():
            for command in machine.retries_due(conn=conn, now=now):
                self.interlock.resend(command["site"], command["device"], command["payload"])
                machine.mark_issued(conn=conn, command=command, payload=command["payload"], now=now)
                self.counters["retries"] += 1

    def _publish_events(self, conn: psycopg.Connection, now: datetime) -> None:
        with conn.transaction():
            row = db.execute(
                conn, "SELECT last_event_id FROM alarm_publish_cursor WHERE name = 'mqtt' FOR UPDATE"
            ).fetchone()
            if row is None:  # first start: from now on, not the whole history
                start = db.execute(conn, "SELECT coalesce(max(id), 0) FROM alarm_event").fetchone()[0]
                conn.execute("INSERT INTO alarm_publish_cursor (name, last_event_id) VALUES ('mqtt', %s)", (start,))
                return
            last = row[0]
            events = store.fetch(
                conn,
                "SELECT e.*, a.title, a.title_en, a.device, a.point, a.state AS alarm_state, "
                "a.level FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id WHERE e.id > %s "
                "ORDER BY e.id LIMIT 500",
                (last,),
            )
            for event in events:
                if event["id"] != last + 1 and now - event["recorded_at"] < _GAP_WAIT:
                    break  # an earlier event may still be committing: keep the order
                self.interlock.publish_alarm(event["site"], orjson.dumps(_alarm_message(event)))
                last = event["id"]
                self.counters["published_events"] += 1
            conn.execute("UPDATE alarm_publish_cursor SET last_event_id = %s WHERE name = 'mqtt'", (last,))

    def _pass(self, conn: psycopg.Connection) -> None:
        self.run_once(conn)
        if self.clock.monotonic() >= self._next_heartbeat:
            notify = {f"notify_{k}": v for k, v in self.notifier.counters.items()} if self.notifier else {}
            heartbeat(
                conn,
                service="alerts",
                instance=self.instance,
                started_at=self.started_at,
                counters={
                    **self.counters,
                    **notify,
                    "mqtt_connected": self.interlock.connected.is_set(),
                    "ack_queue": self.acks.qsize(),
                    "foreign_messages": self.interlock.foreign,  # other topics' retained messages (amqtt), ignored
                    "liveness": self.liveness.report(),
                    "stuck": self.liveness.stuck(),
                },
            )
            self._next_heartbeat = self.clock.monotonic() + self.settings.heartbeat_s
            # ingest's silence is an alarm raised from here, the other process (after a grace period at start:
            # both may have been started together)
            if time.monotonic() - self._born >= self.settings.watch_stale_s:
                watchdog.watch(
                    conn=conn,
                    service_name="ingest",
                    stale_s=self.settings.watch_stale_s,
                    now=self.clock.now(),
                    watcher=self.instance,
                )
                watchdog.watch_relay(
                    conn=conn, late_s=self.settings.relay_backlog_s, now=self.clock.now(), watcher=self.instance
                )

    # --- threads ---------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        link = BackgroundConnection(self.database_url, purpose="alerts worker", logger=_LOGGER, level=logging.ERROR)
        while not self._stop.is_set():
            self._wake.wait(self.settings.tick_s)
            self._wake.clear()
            self.liveness.beat("loop", progress=True)
            try:
                link.run(self._pass)
            except Exception:
                _LOGGER.exception("alerts worker pass failed; trying again")
        link.close()

    def _listen(self) -> None:
        """Wake the loop on commits that concern it (new pending commands, alarm changes)."""
        while not self._stop.is_set():
            self.liveness.beat("listen")
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                    for channel in _CHANNELS:
                        conn.execute(f'LISTEN "{channel}"')
                    while not self._stop.is_set():
                        self.liveness.beat("listen")
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except psycopg.OperationalError:
                self._stop.wait(2.0)

    def start(self) -> None:
        self.interlock.start()
        self.liveness.watch("interlock", mq.network_probe(self.interlock.client))
        self._threads = [
            threading.Thread(target=self._loop, name="alerts-loop", daemon=True),
            threading.Thread(target=self._listen, name="alerts-listen", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.notifier is not None:
            self.notifier.start()

    def stop(self) -> None:
        self.liveness.forget_all()  # the threads end now on purpose
        self._stop.set()
        self._wake.set()
        if self.notifier is not None:
            self.notifier.stop()
        for thread in self._threads:
            thread.join(10)
        self.interlock.stop()
        self._sign_off()

    def _sign_off(self) -> None:
        """A clean stop removes this worker's heartbeat: only a silent death leaves one to go stale."""
        sign_off(self.database_url, service="alerts", instance=self.instance)

    def report_failure(self, failures: list[str]) -> None:
        """Write a last heartbeat naming the stuck parts (best effort) before the process exits."""
        last_heartbeat(
            self.database_url,
            service="alerts",
            instance=self.instance,
            started_at=self.started_at,
            counters={
                **self.counters,
                "liveness": self.liveness.report(),
                "stuck": self.liveness.stuck(),
                "exiting": failures,
            },
        )


def _alarm_message(event: dict) -> dict:
    """An alarm event as published on ``ehs/v1/{site}/alarms``."""
    return {
        "event_id": event["id"],
        "alarm_id": event["alarm_id"],
        "at": event["at"],
        "kind": event["kind"],
        "from": event["from_state"],
        "to": event["to_state"],
        "state": event["alarm_state"],
        "priority": event["priority"],
        "severity": event["severity"],
        "rule": event["rule"],
        "source": event["source"],
        "site": event["site"],
        "area": event["area"],
        "device": event["device"],
        "point": event["point"],
        "title": event["title"],
        "title_en": event["title_en"],
        "level": event["level"],
        "value": event["value"],
        "actor": event["actor"],
        "cause": event["cause"],
        "caused_by": event["caused_by"],
        "drill": event["drill"],
    }
