"""Upload to the authority's platform: the plant acting as an HJ 212 data logger toward a configured platform.

* ``queue_due`` turns the stored readings of the configured points into minute (2051), hourly (2061) and daily
  (2031) frames (-Avg, -Min, -Max of valid data, -Cou from a totals point, -Flag: N, or the first other flag
  seen in the interval, HJ 212-2017 C.16-C.18 "abnormal if any lower-level value was") and queues them in
  ``hj212_outbox``, in data-time order, once per interval.
* ``Uploader`` sends the queue oldest first over one TCP connection, one frame at a time with Flag A=1, and
  marks a frame answered only when the platform's 9014 with the frame's QN arrives; no answer within
  ``timeout_s`` is retried ``retries`` times (HJ 212-2017 Table 1: 10 s, 3), then the connection is dropped and
  made again with back-off. The queue is a table, so a restart or a network loss loses nothing and the order
  holds. A history request from the platform (2051/2061/2031 with BeginTime/EndTime) is answered 9011, the
  stored frames of that range are queued again under the request's QN, and 9012 follows once they are answered.
  The outbox keeps every frame with when it was sent and answered: the record for the regulator's audit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from core.db import execute
from ingest.hj212.codec import MAX_DATA, Hj212Error
from ingest.hj212.segment import (
    Message,
    Version,
    build_frame,
    build_segment,
    cp_groups,
    flag_of,
    new_qn,
    parse_frame,
)

_LOGGER = logging.getLogger(__name__)
DATA_CNS = ("2051", "2061", "2031")


class UploadItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factor: str = Field(pattern=r"^[a-zA-Z0-9]{2,7}$", description="HJ 212 factor code sent for this point")
    point: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$",
        description="site/device/point_key of the values",
    )
    cou_point: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*/[a-z][a-z0-9_]*$",
        description="site/device/point_key of interval totals (-Cou), if any",
    )


class PlatformConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    host: str
    port: int = Field(ge=1, le=65535)
    mn: str = Field(pattern=r"^[0-9A-Za-z]{1,24}$")
    password: str = Field(pattern=r"^[!-~]{0,6}$")
    st: str = "32"
    version: Literal[2017, 2025] = 2017
    cns: list[Literal["2051", "2061", "2031"]] = Field(default_factory=lambda: ["2061"])
    minute_interval_min: int = Field(10, description="MinInterval of 2051 data (1-30 minutes)")
    timezone: str = "Asia/Shanghai"
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=0)
    items: list[UploadItem] = Field(min_length=1)

    def interval(self, cn: str) -> timedelta:
        return {
            "2051": timedelta(minutes=self.minute_interval_min),
            "2061": timedelta(hours=1),
            "2031": timedelta(days=1),
        }[cn]

    @property
    def flag_version(self) -> Version:
        return Version.HJ212_2017 if self.version == 2017 else Version.HJ212_2025


# --- queue -----------------------------------------------------------------------------------------------------


def _points(conn: psycopg.Connection, refs: set[str]) -> dict[str, int]:
    rows = execute(
        conn,
        """
        SELECT s.code || '/' || d.code || '/' || p.key, p.id FROM point p JOIN device d ON d.id = p.device_id
        JOIN site s ON s.id = d.site_id WHERE s.code || '/' || d.code || '/' || p.key = ANY(%s)""",
        (sorted(refs),),
    ).fetchall()
    return dict(rows)


def _floor(local: datetime, step: timedelta) -> datetime:
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day + ((local - day) // step) * step if step < timedelta(days=1) else day


def _values(rows: list[tuple]) -> dict[str, object] | None:
    good = [v for v, q, f in rows if v is not None and q < 2 and f in (None, "N")]
    if not rows:
        return None
    bad = next((f or "D" for v, q, f in rows if not (v is not None and q < 2 and f in (None, "N"))), None)
    out: dict[str, object] = {}
    if good:
        out.update({"Min": min(good), "Avg": round(sum(good) / len(good), 4), "Max": max(good)})
    out["Flag"] = bad or "N"
    return out


def queue_due(conn: psycopg.Connection, cfg: PlatformConfig, *, now: datetime) -> int:
    """Queue the frames of every complete interval not queued yet (inside the caller's transaction)."""
    tz = ZoneInfo(cfg.timezone)
    refs = {i.point for i in cfg.items} | {i.cou_point for i in cfg.items if i.cou_point}
    points = _points(conn, refs)
    queued = 0
    for cn in cfg.cns:
        step = cfg.interval(cn)
        last = execute(
            conn,
            "SELECT max(data_time) FROM hj212_outbox WHERE platform = %s AND cn = %s AND reason = 'scheduled'",
            (cfg.name, cn),
        ).fetchone()[0]
        local_now = now.astimezone(tz)
        # a first run starts with today's intervals (yesterday for daily data)
        today = _floor(local_now, timedelta(days=1))
        start = (last.astimezone(tz) + step) if last else (today - step if step >= timedelta(days=1) else today)
        end = _floor(local_now, step)  # intervals ending at or before now are complete
        if start >= end:
            continue
        ids = list(points.values())
        rows = execute(
            conn,
            """
            SELECT r.point_id, r.time, r.value, r.quality, f.flag FROM reading r
            LEFT JOIN reading_flag f ON f.point_id = r.point_id AND f.time = r.time
            WHERE r.point_id = ANY(%s) AND r.time >= %s AND r.time < %s ORDER BY r.time""",
            (ids, start, end),
        ).fetchall()
        buckets: dict[tuple[datetime, int], list[tuple]] = {}
        for point_id, ts, value, quality, flag in rows:
            buckets.setdefault((_floor(ts.astimezone(tz), step), point_id), []).append((value, quality, flag))
        at = start
        while at < end:
            groups: list[dict[str, object]] = [{"DataTime": at.replace(tzinfo=None)}]
            for item in cfg.items:
                values = _values(buckets.get((at, points.get(item.point, -1)), []))
                if values is None:
                    continue
                cou = buckets.get((at, points.get(item.cou_point or "", -1)), [])
                total = [v for v, q, f in cou if v is not None and q < 2 and f in (None, "N")]
                group = {f"{item.factor}-{k}": v for k, v in values.items() if k != "Flag"}
                if total:
                    group[f"{item.factor}-Cou"] = round(sum(total), 4)
                group[f"{item.factor}-Flag"] = values["Flag"]
                groups.append(group)
            if len(groups) > 1:
                for qn, frame in _frames(cfg, cn, groups, datetime.now(tz).replace(tzinfo=None)):
                    cur = execute(
                        conn,
                        "INSERT INTO hj212_outbox (platform, cn, data_time, qn, frame) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (cfg.name, cn, at.astimezone(UTC), qn, frame),
                    )
                    queued += cur.rowcount
            at = at + step if step < timedelta(days=1) else (at + step).replace(hour=0)
    return queued


def _frames(cfg: PlatformConfig, cn: str, groups: list[dict[str, object]], now: datetime) -> list[tuple[str, bytes]]:
    """One frame, or split packets (Flag D, PNUM/PNO, a QN each) when the data segment exceeds 1024 bytes."""
    flag = flag_of(cfg.flag_version, ack=True)

    def message(
        part: list[dict[str, object]], pno: int | None = None, pnum: int | None = None, qn: str = ""
    ) -> Message:
        return Message(
            st=cfg.st,
            cn=cn,
            mn=cfg.mn,
            pw=cfg.password,
            qn=qn or new_qn(now),
            cp=cp_groups(part),
            flag=flag | (2 if pnum else 0),
            pnum=pnum,
            pno=pno,
        )

    try:
        whole = message(groups)
        return [(whole.qn or "", build_frame(whole))]
    except Hj212Error:
        pass
    head, chunks, current = groups[:1], [], []
    for group in groups[1:]:
        if current and len(build_segment(message(head + current + [group], 99, 99)).encode()) > MAX_DATA:
            chunks.append(current)
            current = []
        current.append(group)
    chunks.append(current)
    out = []
    for i, chunk in enumerate(chunks):
        part = message(head + chunk, i + 1, len(chunks), new_qn(now + timedelta(milliseconds=i)))
        out.append((part.qn or "", build_frame(part)))
    return out


def queue_history(conn: psycopg.Connection, cfg: PlatformConfig, request: Message) -> int:
    """Queue again, under the request's QN, the stored frames of the CN and time range the platform asks for."""
    tz = ZoneInfo(cfg.timezone)
    begin, end = request.fields.get("BeginTime"), request.fields.get("EndTime")
    if not isinstance(begin, datetime) or not isinstance(end, datetime):
        return 0
    rows = execute(
        conn,
        "SELECT data_time, frame FROM hj212_outbox WHERE platform = %s AND cn = %s "
        "AND reason = 'scheduled' AND data_time >= %s AND data_time <= %s ORDER BY data_time",
        (cfg.name, request.cn, begin.replace(tzinfo=tz), end.replace(tzinfo=tz)),
    ).fetchall()
    for data_time, frame in rows:
        old = parse_frame(bytes(frame))
        again = build_frame(
            Message(st=old.st, cn=old.cn, mn=old.mn, pw=old.pw, qn=request.qn, flag=old.flag, cp=old.cp)
        )
        execute(
            conn,
            "INSERT INTO hj212_outbox (platform, cn, data_time, qn, frame, reason) VALUES (%s, %s, %s, %s, %s, %s)",
            (cfg.name, request.cn, data_time, request.qn, again, f"history {request.qn}"),
        )
    return len(rows)


# --- sender ------------------------------------------------------------------------------------------------------


@dataclass
class _History:
    request: Message
    remaining: int


class Uploader:
    """Send the outbox to one platform until ``stop`` is set; reconnect with back-off."""

    def __init__(self, *, database_url: str, config: PlatformConfig, queue_every_s: float = 30.0, clock=None) -> None:
        self.database_url = database_url
        self.cfg = config
        self.queue_every_s = queue_every_s
        self.now = clock or (lambda: datetime.now(UTC))
        self.sent = 0
        self.answered = 0
        self.connections = 0
        self._answers: dict[str, asyncio.Future] = {}
        self._requests: asyncio.Queue[Message] = asyncio.Queue()
        self._history: dict[str, _History] = {}
        self._conn: psycopg.Connection | None = None

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        return self._conn

    def _queue_due(self) -> int:
        conn = self._db()
        with conn.transaction():
            return queue_due(conn, self.cfg, now=self.now())

    def _next(self) -> tuple[int, str, bytes, str] | None:
        row = execute(
            self._db(),
            "SELECT id, qn, frame, reason FROM hj212_outbox WHERE platform = %s "
            "AND answered_at IS NULL ORDER BY id LIMIT 1",
            (self.cfg.name,),
        ).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]), row[3])

    def _mark(self, row_id: int, *, answered: bool) -> None:
        column = "answered_at" if answered else "sent_at"
        extra = "" if answered else ", attempts = attempts + 1"
        execute(self._db(), f"UPDATE hj212_outbox SET {column} = now(){extra} WHERE id = %s", (row_id,))  # noqa: S608

    def _history_request(self, request: Message) -> int:
        conn = self._db()
        with conn.transaction():
            return queue_history(conn, self.cfg, request)

    async def run(self, stop: asyncio.Event) -> None:
        delay = 1.0
        while not stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.cfg.host, self.cfg.port), self.cfg.timeout_s
                )
            except (OSError, TimeoutError) as exc:
                _LOGGER.warning("platform %s unreachable (%s); next try in %.0f s", self.cfg.name, exc, delay)
                await _sleep(stop, delay)
                delay = min(delay * 2, 60.0)
                continue
            self.connections += 1
            delay = 1.0
            listen = asyncio.create_task(self._listen(reader))
            try:
                await self._session(writer, stop, listen)
            except (ConnectionError, OSError, TimeoutError) as exc:
                _LOGGER.warning("platform %s: connection lost (%s)", self.cfg.name, exc)
            finally:
                listen.cancel()
                writer.close()
                for future in self._answers.values():
                    future.cancel()
                self._answers.clear()
        if self._conn is not None:
            self._conn.close()

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        """Answers (9014 by QN) and the platform's requests, as they come."""
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                message = parse_frame(line)
            except Hj212Error as exc:
                _LOGGER.warning("platform %s sent a bad frame (%s)", self.cfg.name, exc)
                continue
            if message.cn == "9014":
                future = self._answers.get(message.qn or "")
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.cn in DATA_CNS and "BeginTime" in message.fields:
                await self._requests.put(message)

    async def _session(self, writer: asyncio.StreamWriter, stop: asyncio.Event, listen: asyncio.Task) -> None:
        next_queue = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if listen.done():
                raise ConnectionError("the platform closed the connection")
            while not self._requests.empty():
                await self._answer_request(writer, self._requests.get_nowait())
            if loop.time() >= next_queue:
                await asyncio.to_thread(self._queue_due)
                next_queue = loop.time() + self.queue_every_s
            pending = await asyncio.to_thread(self._next)
            if pending is None:
                await _sleep(stop, 0.2)
                continue
            row_id, qn, frame, reason = pending
            answer = None
            for _attempt in range(self.cfg.retries + 1):
                future = self._answers[qn] = loop.create_future()
                writer.write(frame)
                await writer.drain()
                self.sent += 1
                await asyncio.to_thread(self._mark, row_id, answered=False)
                try:
                    answer = await asyncio.wait_for(asyncio.shield(future), self.cfg.timeout_s)
                    break
                except TimeoutError:
                    if listen.done():
                        raise ConnectionError("the platform closed the connection") from None
                    continue
            self._answers.pop(qn, None)
            if answer is None:
                raise TimeoutError(f"no 9014 for QN {qn} after {self.cfg.retries + 1} tries")
            await asyncio.to_thread(self._mark, row_id, answered=True)
            self.answered += 1
            if reason.startswith("history "):
                await self._history_done(writer, reason.split(" ", 1)[1])

    async def _answer_request(self, writer: asyncio.StreamWriter, request: Message) -> None:
        """9011 at once; the frames of the range queued again; 9012 when they are answered (100: no data)."""
        writer.write(self._reply(request, "9011", {"QnRtn": 1}))
        count = await asyncio.to_thread(self._history_request, request)
        if count == 0:
            writer.write(self._reply(request, "9012", {"ExeRtn": 100}))
        else:
            self._history[request.qn or ""] = _History(request, count)
        await writer.drain()

    async def _history_done(self, writer: asyncio.StreamWriter, qn: str) -> None:
        history = self._history.get(qn)
        if history is None:
            return
        history.remaining -= 1
        if history.remaining <= 0:
            del self._history[qn]
            writer.write(self._reply(history.request, "9012", {"ExeRtn": 1}))
            await writer.drain()

    def _reply(self, request: Message, cn: str, items: dict) -> bytes:
        return build_frame(
            Message(
                st="91",
                cn=cn,
                mn=self.cfg.mn,
                pw=self.cfg.password,
                qn=request.qn,
                flag=flag_of(self.cfg.flag_version),
                cp=cp_groups(items),
            )
        )


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def main(argv: list[str] | None = None) -> None:
    """``python -m ingest.hj212.upload --config platforms.yaml``: send to every platform of the file."""
    import argparse
    import signal

    import yaml

    from core.logging import setup_logging
    from core.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m ingest.hj212.upload", description=main.__doc__)
    parser.add_argument("--config", required=True, help="YAML: platforms: [{name, host, port, mn, password, ...}]")
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level)
    if not settings.database_url:
        raise SystemExit("the uploader needs EHS_DATABASE_URL")
    with open(args.config, encoding="utf-8") as fh:
        platforms = [PlatformConfig.model_validate(p) for p in (yaml.safe_load(fh) or {}).get("platforms", [])]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(Uploader(database_url=settings.database_url, config=p).run(stop) for p in platforms))

    asyncio.run(run())


if __name__ == "__main__":
    main()
