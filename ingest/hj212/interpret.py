"""What the listener does with one parsed message: readings with their flags, rejects, and the replies.

Pure functions (no I/O). Data commands (2011 real-time, 2051 minute, 2061 hourly, 2031 daily, 2021 equipment
state, 2041 run time) become reading rows for the points the plant file maps their CP items to, at DataTime
(the sampling instant for 2011/2021, the start of the interval for the others, HJ 212-2017 Table 4) in the site's
time zone. The item's ``-Flag`` is summarised as the reading's quality, and stored in ``reading_flag`` unless it
is N (normal), which quality 0 already says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.model import Quality, Reading
from ingest.hj212.registry import LoggerInfo
from ingest.hj212.segment import (
    NUMBER_SUFFIXES,
    Message,
    Version,
    build_frame,
    cp_groups,
    flag_of,
    new_qn,
)

DATA_CNS = frozenset({"2011", "2021", "2031", "2041", "2051", "2061"})
#: Notifications from the field, answered with 9013 when the Flag asks (HJ 212-2017 Table 9).
NOTIFY_CNS = frozenset({"1013", "2081", "2072"})
#: Answers from the field to the host's commands: never answered.
ANSWER_CNS = frozenset({"9011", "9012", "9013", "9014"})
#: Uploads that carry nothing to store here but are answered (heartbeat 9015 of HJ 212-2025, answers to the
#: host's get commands).
ACCEPTED_CNS = frozenset({"9015", "1011", "1061", "1063", "3016", "3017", "3018", "3019", "3020"})

_QUALITY = {"N": Quality.GOOD, "S": Quality.UNCERTAIN, "T": Quality.UNCERTAIN}


class Problem(StrEnum):
    """Listener-level reasons (beside the codec's ``Refusal``) for the dead letters."""

    UNKNOWN_MN = "unknown_mn"
    BAD_PASSWORD = "bad_password"
    WRONG_ST = "wrong_st"
    UNEXPECTED_CN = "unexpected_cn"
    MISSING_DATA_TIME = "missing_data_time"
    BAD_TIME = "bad_time"
    UNKNOWN_POINT = "unknown_point"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED = "oversized"
    DECODE_ERROR = "decode_error"
    STORE_ERROR = "store_error"


def quality_of(flag: str | None) -> int:
    """N (or no flag) good; S manual setting and T above range uncertain; F M D C B bad."""
    return int(Quality.GOOD if flag is None else _QUALITY.get(flag, Quality.BAD))


@dataclass(slots=True)
class Readings:
    rows: list[Reading] = field(default_factory=list)
    flags: list[tuple[int, datetime, str]] = field(default_factory=list)
    problems: list[tuple[Problem, str]] = field(default_factory=list)


def local_to_utc(when: datetime, logger: LoggerInfo) -> datetime:
    return when.replace(tzinfo=logger.tz).astimezone(UTC)


def readings_of(
    message: Message, logger: LoggerInfo, *, now: datetime, max_future: timedelta, max_age: timedelta
) -> Readings:
    """Rows and flags of a data message; items no point is mapped to are reported by factor."""
    out = Readings()
    local = message.data_time
    if local is None:
        out.problems.append((Problem.MISSING_DATA_TIME, f"CN {message.cn} without DataTime"))
        return out
    try:
        when = local_to_utc(local, logger)
    except (OverflowError, ValueError):
        out.problems.append((Problem.BAD_TIME, f"DataTime {local} cannot be placed in {logger.tz}"))
        return out
    if when > now + max_future:
        out.problems.append(
            (
                Problem.BAD_TIME,
                f"DataTime {local:%Y-%m-%d %H:%M:%S} ({logger.tz}) is in the future (the logger's clock is ahead)",
            )
        )
        return out
    if when < now - max_age:
        out.problems.append((Problem.BAD_TIME, f"DataTime {local:%Y-%m-%d %H:%M:%S} is older than {max_age.days} days"))
        return out
    cn = message.cn
    mapped = logger.factors.get(cn, frozenset())
    fields = message.fields
    unknown: set[str] = set()
    outside: list[str] = []
    for key, value in fields.items():
        factor, _, suffix = key.partition("-")
        if suffix not in NUMBER_SUFFIXES or not isinstance(value, float):
            continue
        point = logger.fields.get((cn, key))
        if point is None:
            if factor not in mapped:
                unknown.add(factor)
            continue
        if not point.valid_min <= value <= point.valid_max:
            outside.append(f"{key}={value:g} outside [{point.valid_min:g}, {point.valid_max:g}]")
            continue
        flag = fields.get(f"{factor}-Flag")
        flag = flag if isinstance(flag, str) else None
        out.rows.append(Reading(when, point.point_id, value, quality_of(flag)))
        if flag is not None and flag != "N":  # N is the normal case: quality 0 says it, no row needed
            out.flags.append((point.point_id, when, flag))
    if unknown:
        out.problems.append((Problem.UNKNOWN_POINT, f"CN {cn}: no point mapped for {', '.join(sorted(unknown))}"))
    if outside:
        out.problems.append((Problem.OUT_OF_RANGE, "; ".join(outside[:20])))
    return out


# --- replies --------------------------------------------------------------------------------------------------


def _reply(message: Message, cn: str, items: dict[str, object] | None = None) -> bytes:
    version = message.version if message.flag is not None else Version.HJT212_2005
    return build_frame(
        Message(
            st="91",
            cn=cn,
            mn=message.mn,
            pw=message.pw,
            qn=message.qn,
            flag=flag_of(version) if message.flag is not None else None,
            cp=cp_groups(items or {}),
        )
    )


def data_reply(message: Message) -> bytes:
    """9014: the data answer to an upload whose Flag asks for one (same QN)."""
    return _reply(message, "9014")


def notify_reply(message: Message) -> bytes:
    """9013: the answer to a notification (same QN)."""
    return _reply(message, "9013")


def set_time(message: Message, *, now: datetime, tz) -> tuple[str, bytes]:
    """1012: set the logger's clock to ``now`` (its local time); returns the command's QN and frame."""
    local = now.astimezone(tz).replace(tzinfo=None)
    qn = new_qn(local)
    version = message.version if message.flag is not None else Version.HJ212_2017
    items: dict[str, object] = {"SystemTime": local.strftime("%Y%m%d%H%M%S")}
    if "PolId" in message.fields:
        items = {"PolId": message.fields["PolId"], **items}
    frame = build_frame(
        Message(
            st=message.st,
            cn="1012",
            mn=message.mn,
            pw=message.pw,
            qn=qn,
            flag=flag_of(version, ack=True),
            cp=cp_groups(items),
        )
    )
    return qn, frame
