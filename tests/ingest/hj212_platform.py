"""A stand-in for the authority's platform: it checks what a real one checks (length and CRC through the codec,
MN and PW, data times in order per command, one answer per frame) and can drop the connection or ask for history."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ingest.hj212 import Hj212Error, Message, build_frame, cp_groups, parse_frame
from ingest.hj212.segment import new_qn


class Platform:
    def __init__(self, *, mn: str, pw: str, drop_at: int | None = None) -> None:
        self.mn, self.pw = mn, pw
        self.drop_at = drop_at  # close the connection, unanswered, when this frame number arrives
        self.received: list[Message] = []
        self.replies: list[Message] = []  # 9011 / 9012 from the uploader
        self.refused: list[str] = []
        self.out_of_order: list[str] = []
        self.duplicates = 0
        self.connections = 0
        self.port = 0
        self._last: dict[str, datetime] = {}
        self._requests: set[str] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._frames = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writer = writer
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                try:
                    message = parse_frame(line)
                except Hj212Error as exc:
                    self.refused.append(exc.reason.value)
                    continue
                if message.mn != self.mn or message.pw != self.pw:
                    self.refused.append("mn_or_pw")
                    continue
                if message.cn in ("9011", "9012"):
                    self.replies.append(message)
                    continue
                self._frames += 1
                if self.drop_at is not None and self._frames == self.drop_at:
                    self.drop_at = None
                    writer.close()
                    return
                self._check_order(message)
                self.received.append(message)
                writer.write(
                    build_frame(Message(st="91", cn="9014", mn=message.mn, pw=message.pw, qn=message.qn, flag=4, cp=()))
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _check_order(self, message: Message) -> None:
        if message.qn in self._requests:
            return  # history re-sent on request: any order
        when = message.data_time
        last = self._last.get(message.cn)
        if last is not None and when is not None and when <= last:
            if any(m.data_time == when and m.cn == message.cn for m in self.received):
                self.duplicates += 1
            else:
                self.out_of_order.append(f"{message.cn} {when} after {last}")
        if when is not None:
            self._last[message.cn] = max(when, last or when)

    async def request_history(self, cn: str, begin: datetime, end: datetime) -> str:
        qn = new_qn(datetime.now())
        self._requests.add(qn)
        assert self._writer is not None
        self._writer.write(
            build_frame(
                Message(
                    st="32",
                    cn=cn,
                    mn=self.mn,
                    pw=self.pw,
                    qn=qn,
                    flag=5,
                    cp=cp_groups({"BeginTime": begin, "EndTime": end}),
                )
            )
        )
        await self._writer.drain()
        return qn
