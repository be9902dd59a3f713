"""The HJ 212 listener: an asyncio TCP server for many data loggers at once.

Each connection reads CRLF-terminated frames (at most ``max_frame_bytes``), parses them with the pure codec,
checks MN and PW against the plant's loggers, reassembles split uploads, and queues what must be stored. One
writer task takes everything queued, stores it in one transaction (in a worker thread) and only then sends the
9014 data answers the frames asked for (the same transaction queues the relayable readings in the relay outbox; a
relay loop publishes them to ingest afterwards, ``ingest.hj212.relay``, so an answer never waits for the broker):
a logger that gets no answer keeps the data and sends it again
(HJ 212-2017 6.4, timeout and retries), so nothing answered is lost. While the database is down the queue fills
and the listener stops reading (TCP back-pressure on the loggers). A bad frame costs only itself: it becomes a
dead letter with its reason and the peer's address, and the connection goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from core.db import heartbeat, timescaledb_enabled
from core.errors import StoreUnavailable
from core.registry import current_revision
from core.timeseries import LATE_AFTER
from ingest.decoders import StatusChange
from ingest.hj212.codec import Hj212Error
from ingest.hj212.interpret import (
    ACCEPTED_CNS,
    ANSWER_CNS,
    DATA_CNS,
    NOTIFY_CNS,
    Problem,
    data_reply,
    notify_reply,
    readings_of,
    set_time,
)
from ingest.hj212.registry import LoggerIndex, LoggerInfo, load_loggers
from ingest.hj212.relay import Publisher, backlog, purge_sent, send_pending, telemetry_of
from ingest.hj212.segment import Message, build_frame, parse_frame
from ingest.hj212.settings import Hj212Settings
from ingest.hj212.split import Reassembler
from ingest.hj212.store import DeadFrame, Work, write_dead, write_work

_LOGGER = logging.getLogger(__name__)


@dataclass
class Command:
    """A command the listener sent to a logger (1012 set time), followed through 9011 and 9012."""

    qn: str
    cn: str
    mn: str
    sent_at: datetime
    qn_rtn: int | None = None
    exe_rtn: int | None = None


@dataclass(eq=False)
class _Connection:
    peer: str
    writer: asyncio.StreamWriter
    split: Reassembler
    devices: set[int] = field(default_factory=set)
    refused_in_a_row: int = 0


class Hj212Listener:
    """Serve loggers until ``stop``; ``counters`` for the heartbeat, ``commands`` for the audit and tests.

    ``relay`` (``ingest.hj212.relay.MqttRelay``), when given, carries the committed readings to ingest's rules
    and detectors: the writer queues them in the relay outbox with the readings, the relay loop publishes them."""

    def __init__(
        self, *, database_url: str, settings: Hj212Settings, clock=None, relay: Publisher | None = None
    ) -> None:
        self.database_url = database_url
        self.settings = settings
        self.relay = relay
        self.now = clock or (lambda: datetime.now(UTC))
        self.counters: Counter[str] = Counter()
        self.commands: dict[str, Command] = {}
        self.index = LoggerIndex({}, -1)
        self.port: int | None = None
        self.instance = f"{socket.gethostname()}:{os.getpid()}:hj212"
        self.started_at = self.now()
        self._queue: asyncio.Queue[Work] | None = None
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._conn: psycopg.Connection | None = None
        self._online: Counter[int] = Counter()
        self._connections: set[_Connection] = set()
        self._timescale = False
        self._db_up = True
        self._relay_wake: asyncio.Event | None = None
        self._relay_task: asyncio.Task | None = None
        self._relay_conn: psycopg.Connection | None = None
        self._relay_stopping = False
        self._relay_backlog = (0, 0.0)
        self._relay_alarmed = False
        self._purged_at = 0.0

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.settings.queue_size)
        await asyncio.to_thread(self._load)
        self._server = await asyncio.start_server(
            self._serve, self.settings.host, self.settings.port, limit=self.settings.max_frame_bytes, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="hj212-writer"),
            asyncio.create_task(self._housekeeping(), name="hj212-housekeeping"),
        ]
        if self.relay is not None:
            self._relay_wake = asyncio.Event()
            self._relay_task = asyncio.create_task(self._relay_loop(), name="hj212-relay")
        _LOGGER.info("HJ 212 listener on %s:%d, %d logger(s)", self.settings.host, self.port, len(self.index.loggers))

    async def stop(self) -> None:
        """Stop accepting, close the connections, store what is queued, then stop the tasks."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.writer.close()
        if self._server is not None:
            await self._server.wait_closed()
        assert self._queue is not None
        deadline = time.monotonic() + 10
        while not self._queue.empty() and time.monotonic() < deadline and self._db_up:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._relay_task is not None:
            # the loop ends after one more pass (a pass in a thread cannot be cancelled); what is not confirmed
            # then stays in the outbox for the next start
            self._relay_stopping = True
            assert self._relay_wake is not None
            self._relay_wake.set()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        for conn in (self._conn, self._relay_conn):
            if conn is not None:
                conn.close()

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # --- configuration and heartbeat ---------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
        return self._conn

    def _load(self) -> None:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            self.index = load_loggers(conn)
            self._timescale = timescaledb_enabled(conn)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await asyncio.to_thread(self._housekeep)
            except Exception as exc:  # the database may be down: the writer says so; keep serving
                _LOGGER.debug("HJ 212 housekeeping failed: %s", exc)
            for connection in list(self._connections):
                self._give_up_splits(connection)

    def _housekeep(self) -> None:
        with psycopg.connect(self.database_url, connect_timeout=5, autocommit=True) as conn:
            if current_revision(conn) != self.index.revision:
                self.index = load_loggers(conn)
                _LOGGER.info("HJ 212 loggers reloaded: %d", len(self.index.loggers))
            if self.relay is not None:
                self._watch_relay(conn)
            heartbeat(
                conn, service="hj212", instance=self.instance, started_at=self.started_at, counters=self.snapshot()
            )

    def _watch_relay(self, conn: psycopg.Connection) -> None:
        """The outbox's backlog for the heartbeat, an ERROR once it is older than the threshold, and retention."""
        self._relay_backlog = unsent, age = backlog(conn)
        late = age > self.settings.relay_backlog_alarm_s
        if late and not self._relay_alarmed:
            _LOGGER.error(
                "HJ 212 relay backlog: %d message(s) unsent, the oldest for %.0f s: their readings are stored but "
                "no rule has judged them (is the broker reachable?)",
                unsent,
                age,
            )
        elif self._relay_alarmed and not late:
            _LOGGER.warning("HJ 212 relay backlog cleared (%d unsent, oldest %.0f s)", unsent, age)
        self._relay_alarmed = late
        if time.monotonic() - self._purged_at >= self.settings.relay_purge_every_s:
            self._purged_at = time.monotonic()
            purged = purge_sent(conn, older_than=timedelta(days=self.settings.relay_retention_days))
            if purged:
                self.counters["relay_purged"] += purged

    def snapshot(self) -> dict:
        out = {
            **self.counters,
            "connections": len(self._connections),
            "loggers": len(self.index.loggers),
            "queue_depth": self._queue.qsize() if self._queue else 0,
            "db_up": self._db_up,
        }
        if self.relay is not None:
            out["relay_unsent"], out["relay_oldest_unsent_s"] = self._relay_backlog[0], round(self._relay_backlog[1])
            out["relay_backlog_late"] = self._relay_alarmed
        return out

    # --- connections ------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        if len(self._connections) >= self.settings.max_connections:
            _LOGGER.warning("HJ 212: %s refused, %d connections open", peer, len(self._connections))
            writer.close()
            return
        connection = _Connection(peer, writer, Reassembler(timeout_s=self.settings.split_timeout_s))
        self._connections.add(connection)
        self.counters["connections_opened"] += 1
        try:
            await self._read(reader, connection)
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(connection)
            self._give_up_splits(connection, everything=True)
            offline = []
            for device_id in connection.devices:
                self._online[device_id] -= 1
                if self._online[device_id] <= 0:
                    del self._online[device_id]
                    offline.append(StatusChange(device_id, "offline", self.now()))
            if offline:
                await self._put(Work(statuses=offline))
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        oversized: bytearray | None = None
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), self.settings.idle_timeout_s)
            except asyncio.LimitOverrunError as exc:
                chunk = await reader.readexactly(exc.consumed)
                oversized = (oversized or bytearray()) + chunk[: 8192 - len(oversized or b"")]
                continue
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip() or oversized:
                    await self._frame(
                        bytes(oversized or b"") + exc.partial, connection, oversized=oversized is not None
                    )
                return
            except TimeoutError:
                return
            if oversized is not None:
                await self._frame(bytes(oversized) + line[:64], connection, oversized=True)
                oversized = None
            elif line.strip():  # a bare CRLF carries nothing
                await self._frame(line, connection)
            if connection.writer.is_closing():
                return

    async def _put(self, work: Work) -> None:
        assert self._queue is not None
        await self._queue.put(work)

    def _dead(
        self,
        connection: _Connection,
        raw: bytes,
        reason: str,
        detail: str,
        *,
        message: Message | None = None,
        logger: LoggerInfo | None = None,
    ) -> DeadFrame:
        self.counters["rejected"] += 1
        self.counters[f"rejected_{reason}"] += 1
        topic = "hj212" + (f"/{message.mn}/{message.cn}" if message is not None else "")
        return DeadFrame(
            self.now(),
            topic,
            raw,
            reason,
            detail,
            connection.peer,
            logger.site if logger else None,
            logger.device if logger else None,
        )

    async def _frame(self, raw: bytes, connection: _Connection, *, oversized: bool = False) -> None:
        """Handle one frame; whatever goes wrong costs this frame only."""
        self.counters["frames"] += 1
        try:
            if oversized:
                work = Work(
                    dead=[
                        self._dead(
                            connection,
                            raw,
                            Problem.OVERSIZED.value,
                            f"no CRLF within {self.settings.max_frame_bytes} bytes",
                        )
                    ]
                )
            else:
                work = self._handle(raw, connection)
        except Exception as exc:  # a bug must not end the connection or the listener
            _LOGGER.exception("HJ 212 frame from %s could not be handled", connection.peer)
            work = Work(
                dead=[
                    self._dead(connection, raw, Problem.DECODE_ERROR.value, f"{type(exc).__name__}: {str(exc)[:300]}")
                ]
            )
        if work is not None:
            refused = bool(work.dead) and not work.rows and not work.replies
            connection.refused_in_a_row = connection.refused_in_a_row + 1 if refused else 0
            await self._put(work)
        else:
            connection.refused_in_a_row = 0
        if connection.refused_in_a_row >= self.settings.max_refusals_in_a_row:
            _LOGGER.warning(
                "HJ 212: closing %s after %d refused frames in a row", connection.peer, connection.refused_in_a_row
            )
            self.counters["connections_closed_for_refusals"] += 1
            connection.writer.close()

    def _handle(self, raw: bytes, connection: _Connection) -> Work | None:
        try:
            message = parse_frame(raw)
        except Hj212Error as exc:
            return Work(dead=[self._dead(connection, raw, exc.reason.value, exc.detail)])
        logger = self.index.loggers.get(message.mn)
        if logger is None:
            return Work(
                dead=[
                    self._dead(
                        connection,
                        raw,
                        Problem.UNKNOWN_MN.value,
                        f"no logger with MN {message.mn} in the plant configuration",
                        message=message,
                    )
                ]
            )
        if not hmac.compare_digest(message.pw.encode(), logger.password.encode()):
            return Work(
                dead=[
                    self._dead(
                        connection, raw, Problem.BAD_PASSWORD.value, "PW does not match", message=message, logger=logger
                    )
                ]
            )
        if logger.st and message.st not in (logger.st, "91"):
            return Work(
                dead=[
                    self._dead(
                        connection,
                        raw,
                        Problem.WRONG_ST.value,
                        f"ST {message.st}, configured {logger.st}",
                        message=message,
                        logger=logger,
                    )
                ]
            )
        self.counters["valid"] += 1
        work = Work(answer_to=connection.writer, raw=raw)
        if logger.device_id not in connection.devices:
            connection.devices.add(logger.device_id)
            self._online[logger.device_id] += 1
            work.statuses.append(StatusChange(logger.device_id, "online", self.now()))
        try:
            whole = connection.split.add(message)
        except Hj212Error as exc:
            work.dead.append(self._dead(connection, raw, exc.reason.value, exc.detail, message=message, logger=logger))
            return work
        cn = message.cn
        if whole is None:  # a part: answered now, the whole is stored later
            if message.needs_ack:
                self._send(connection, data_reply(message))
            return work if work.statuses else None
        if cn in DATA_CNS:
            found = readings_of(
                whole,
                logger,
                now=self.now(),
                max_future=timedelta(seconds=self.settings.max_future_s),
                max_age=timedelta(days=self.settings.max_age_days),
            )
            work.rows, work.flags = found.rows, found.flags
            if self.relay is not None:
                work.relay = [
                    (logger.site, logger.device, topic, payload)
                    for topic, payload in telemetry_of(
                        found.rows,
                        found.flags,
                        logger,
                        now=self.now(),
                        max_age=timedelta(hours=self.settings.relay_max_age_h),
                    )
                ]
            work.dead += [
                self._dead(connection, raw, p.value, d, message=message, logger=logger) for p, d in found.problems
            ]
            if message.needs_ack:
                work.replies.append(data_reply(message))
            return work
        if cn in ANSWER_CNS:
            self._answer(message)
        elif cn in NOTIFY_CNS:
            if message.needs_ack:
                self._send(connection, notify_reply(message))
            if cn == "1013" and self.settings.time_calibration:
                qn, frame = set_time(message, now=self.now(), tz=logger.tz)
                self.commands[qn] = Command(qn, "1012", message.mn, self.now())
                self.counters["commands_sent"] += 1
                self._send(connection, frame)
        elif cn in ACCEPTED_CNS:
            if message.needs_ack:
                self._send(connection, data_reply(message))
        else:
            work.dead.append(
                self._dead(
                    connection,
                    raw,
                    Problem.UNEXPECTED_CN.value,
                    f"CN {cn} is a command to the field, not from it",
                    message=message,
                    logger=logger,
                )
            )
        return work if work.statuses or work.dead else None

    def _answer(self, message: Message) -> None:
        """Follow a command through its request answer (9011 QnRtn) and execution result (9012 ExeRtn)."""
        command = self.commands.get(message.qn or "")
        if command is None:
            self.counters["answers_unmatched"] += 1
            return
        value = message.fields.get("QnRtn" if message.cn == "9011" else "ExeRtn")
        if message.cn == "9011" and isinstance(value, float):
            command.qn_rtn = int(value)
            if command.qn_rtn != 1:
                _LOGGER.warning(
                    "HJ 212 %s refused command %s %s: QnRtn=%d", command.mn, command.cn, command.qn, command.qn_rtn
                )
                self.counters["commands_refused"] += 1
        elif message.cn == "9012" and isinstance(value, float):
            command.exe_rtn = int(value)
            self.counters["commands_done" if command.exe_rtn == 1 else "commands_failed"] += 1
        while len(self.commands) > 10000:
            self.commands.pop(next(iter(self.commands)))

    def _send(self, connection: _Connection, frame: bytes) -> None:
        if not connection.writer.is_closing():
            connection.writer.write(frame)
            self.counters["replies"] += 1

    def _give_up_splits(self, connection: _Connection, *, everything: bool = False) -> None:
        if everything:
            connection.split.timeout_s = -1.0
        expired = connection.split.expire()
        if not expired or self._queue is None:
            return
        dead = []
        for parts, detail in expired:
            # the parts as received (a parsed frame builds back to the same bytes)
            raw = b"\r\n".join(build_frame(p, crlf=False) for p in sorted(parts, key=lambda m: m.pno or 0))
            dead.append(self._dead(connection, raw, "split_incomplete", detail, message=parts[0]))
        try:
            self._queue.put_nowait(Work(dead=dead))
        except asyncio.QueueFull:
            _LOGGER.warning("HJ 212: queue full, %d incomplete split message(s) not recorded", len(dead))

    # --- writer -------------------------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._queue is not None
        delay = 1.0
        while True:
            items = [await self._queue.get()]
            while len(items) < self.settings.batch_max_frames:
                try:
                    items.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            while True:
                try:
                    await asyncio.to_thread(self._commit, items)
                except StoreUnavailable as exc:
                    if self._db_up:
                        _LOGGER.error(
                            "HJ 212: database unavailable, holding %d frame(s) (no answers sent, "
                            "loggers keep their data): %s",
                            len(items),
                            exc,
                        )
                    self._db_up = False
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                if not self._db_up:
                    _LOGGER.warning("HJ 212: database is back")
                self._db_up, delay = True, 1.0
                break
            if self._relay_wake is not None and any(item.relay for item in items):
                self._relay_wake.set()
            for item in items:
                writer = item.answer_to
                for reply in item.replies:
                    if writer is not None and not writer.is_closing():
                        writer.write(reply)
                        self.counters["replies"] += 1

    async def _relay_loop(self) -> None:
        """Publish the outbox to ingest (``ingest.hj212.relay.send_pending``) until the listener stops: at once
        after a commit that queued messages, every ``relay_poll_s`` otherwise, with back-off while the broker
        (or the database) does not take them."""
        assert self._relay_wake is not None
        delay = self.settings.relay_retry_s
        while True:
            stopping = self._relay_stopping  # a stop asked for before this pass: it is the last one
            try:
                done = await asyncio.to_thread(self._relay_pass)
            except Exception as exc:  # the database may be down: the rows wait, the writer reports the outage
                _LOGGER.debug("HJ 212 relay pass failed: %s", exc)
                done = None
            if done is not None and done.sent:
                self.counters["relayed"] += done.sent
            if stopping:
                return
            if done is None or done.error:
                if done is not None:
                    self.counters["relay_unconfirmed"] += done.claimed - done.sent
                    if delay == self.settings.relay_retry_s:
                        _LOGGER.warning(
                            "HJ 212 relay: %d of %d message(s) not confirmed (%s); they stay in the outbox, "
                            "retrying with back-off",
                            done.claimed - done.sent,
                            done.claimed,
                            done.error,
                        )
                await self._relay_sleep(delay)
                delay = min(delay * 2, self.settings.relay_retry_max_s)
                continue
            delay = self.settings.relay_retry_s
            if done.claimed < self.settings.relay_batch:
                await self._relay_sleep(self.settings.relay_poll_s)

    async def _relay_sleep(self, seconds: float) -> None:
        assert self._relay_wake is not None
        if self._relay_stopping:
            return
        try:
            await asyncio.wait_for(self._relay_wake.wait(), seconds)
        except TimeoutError:
            pass
        self._relay_wake.clear()

    def _relay_pass(self):
        assert self.relay is not None
        if self._relay_conn is None or self._relay_conn.closed:
            self._relay_conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
        try:
            return send_pending(
                self._relay_conn,
                self.relay,
                batch=self.settings.relay_batch,
                timeout_s=self.settings.relay_timeout_s,
            )
        except psycopg.OperationalError:
            self._relay_conn.close()
            raise

    def _commit(self, items: list[Work]) -> None:
        started = time.perf_counter()
        batch_id = uuid.uuid4().hex
        late_before = None if self._timescale else self.now() - LATE_AFTER
        try:
            conn = self._connection()
            try:
                with conn.transaction():
                    written = write_work(conn, items, batch_id=batch_id, late_before=late_before)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                # refused for its data, not an outage: store item by item, the refused ones as dead letters
                _LOGGER.warning("HJ 212 batch refused (%s); storing its %d frame(s) one by one", exc, len(items))
                written = 0
                for item in items:
                    try:
                        with conn.transaction():
                            written += write_work(conn, [item], batch_id=batch_id, late_before=late_before)
                    except psycopg.OperationalError:
                        raise
                    except psycopg.Error as one:
                        item.relay = []  # not stored: not judged either
                        with conn.transaction():
                            write_dead(
                                conn,
                                [
                                    DeadFrame(
                                        self.now(),
                                        "hj212",
                                        item.raw,
                                        Problem.STORE_ERROR.value,
                                        f"{type(one).__name__}: {str(one)[:300]}",
                                        "",
                                    )
                                ],
                            )
        except psycopg.OperationalError as exc:
            if self._conn is not None:
                self._conn.close()
            raise StoreUnavailable(str(exc).strip()) from exc
        self.counters["readings_written"] += written
        self.counters["commit_ms_total"] += round((time.perf_counter() - started) * 1000)
        self.counters["transactions"] += 1
        self.counters["committed_frames"] += len(items)
