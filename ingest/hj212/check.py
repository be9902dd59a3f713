"""``ehs hj212 check``: one verdict per frame line, as JSON-ready dicts (ARCHITECTURE.md, CLI contract)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ingest.hj212.codec import Hj212Error
from ingest.hj212.segment import Message, parse_frame
from ingest.hj212.split import Reassembler

_EMPTY = {"cn": None, "st": None, "mn": None, "data_time": None, "fields": {}}


def _jsonable(value: object, tz: ZoneInfo) -> object:
    return value.replace(tzinfo=tz).isoformat() if isinstance(value, datetime) else value


def verdict(message: Message, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "valid": True,
        "reason": None,
        "cn": message.cn,
        "st": message.st,
        "mn": message.mn,
        "qn": message.qn,
        "version": message.version.name.lower(),
        "data_time": _jsonable(message.data_time, tz) if message.data_time else None,
        "fields": {k: _jsonable(v, tz) for k, v in message.fields.items() if k != "DataTime"},
    }


def check_lines(lines: Iterable[bytes], *, tz: str = "Asia/Shanghai") -> Iterator[dict[str, Any]]:
    """Yield one dict per frame line (blank lines and ``#`` comments skipped), then a summary dict.

    A split packet is reported valid on its own line (with its own items); the summary counts the whole
    messages its packets made up.
    """
    zone = ZoneInfo(tz)
    reasons: Counter[str] = Counter()
    frames = valid = 0
    joined = Reassembler(timeout_s=float("inf"))
    reassembled = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if not line.strip() or (line.startswith(b"#") and not line.startswith(b"##")):
            continue
        frames += 1
        try:
            message = parse_frame(line)
        except Hj212Error as exc:
            reasons[exc.reason.value] += 1
            yield {"line": number, "valid": False, "reason": exc.reason.value, "detail": exc.detail, **_EMPTY}
            continue
        valid += 1
        out = verdict(message, zone)
        if message.split:
            out["pnum"], out["pno"] = message.pnum, message.pno
            try:
                if joined.add(message) is not None:
                    reassembled += 1
            except Hj212Error as exc:
                reasons[exc.reason.value] += 1
        yield {"line": number, **out}
    incomplete = len(joined)
    if incomplete:
        reasons["split_incomplete"] += incomplete
    yield {
        "summary": True,
        "frames": frames,
        "valid": valid,
        "invalid": frames - valid,
        "split_messages": reassembled,
        "split_incomplete": incomplete,
        "reasons": dict(reasons),
    }
