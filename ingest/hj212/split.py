"""Reassemble split uploads (Flag bit D, ``PNUM``/``PNO``; HJ 212-2017 Table C.49).

A logger splits a message that does not fit in 1024 bytes into PNUM packets numbered PNO = 1..PNUM; each packet
is a whole frame with its own QN and its own 9014 reply. The parts of one message are recognised by (MN, ST, CN,
PNUM) and, when every part carries one, the DataTime; the message is complete when every PNO has arrived. Parts
that wait longer than ``timeout_s`` are given up (``split_incomplete``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ingest.hj212.codec import Hj212Error, Refusal
from ingest.hj212.segment import Message


@dataclass
class _Pending:
    started: float
    parts: dict[int, Message] = field(default_factory=dict)


def _key(message: Message) -> tuple:
    return (message.mn, message.st, message.cn, message.pnum, message.fields.get("DataTime"))


def join(parts: list[Message]) -> Message:
    """One message from all its parts, in PNO order; the same item with two values is a conflict."""
    parts = sorted(parts, key=lambda m: m.pno or 0)
    fields: dict = {}
    groups: list = []
    for part in parts:
        for key, value in part.fields.items():
            if key in fields and fields[key] != value:
                raise Hj212Error(
                    Refusal.SPLIT_CONFLICT, f"{key} is {fields[key]!r} in one packet and {value!r} in packet {part.pno}"
                )
            fields[key] = value
        groups += [g for g in part.cp if not (len(g) == 1 and g[0][0] == "DataTime" and groups)]
    first = parts[0]
    return replace(
        first,
        flag=first.flag & ~2 if first.flag is not None else None,
        pnum=None,
        pno=None,
        cp=tuple(groups),
        fields=fields,
    )


class Reassembler:
    """Collect the parts of split messages (one per connection); not thread-safe."""

    def __init__(self, *, timeout_s: float = 120.0, max_pending: int = 64, clock=time.monotonic) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.clock = clock
        self._pending: dict[tuple, _Pending] = {}

    def add(self, message: Message) -> Message | None:
        """Return the whole message when ``message`` completes one (or is not split), else None."""
        if not message.split:
            return message
        key = _key(message)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                del self._pending[oldest]
            pending = self._pending[key] = _Pending(self.clock())
        pending.parts[message.pno] = message  # a repeated packet (no 9014 arrived) replaces the first
        if len(pending.parts) < (message.pnum or 0):
            return None
        del self._pending[key]
        return join(list(pending.parts.values()))

    def expire(self) -> list[tuple[list[Message], str]]:
        """Give up messages whose parts waited too long; return their parts and a detail text."""
        now = self.clock()
        out = []
        for key in [k for k, p in self._pending.items() if now - p.started > self.timeout_s]:
            pending = self._pending.pop(key)
            got = sorted(pending.parts)
            total = next(iter(pending.parts.values())).pnum
            out.append(
                (
                    list(pending.parts.values()),
                    f"CN {key[2]} from MN {key[0]}: packets {got} of {total} arrived within {self.timeout_s:g} s",
                )
            )
        return out

    def __len__(self) -> int:
        return len(self._pending)
