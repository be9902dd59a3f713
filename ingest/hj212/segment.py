"""The HJ 212 data segment: ``QN;ST;CN;PW;MN;Flag;[PNUM;PNO;]CP=&&...&&`` (HJ 212-2017 6.3.2, Table 3).

``parse_segment`` checks the header items (order, syntax, the command code for the frame's version) and the CP
items (``;`` between pollutants, ``,`` within one, ``//log//`` text, numbers ``Nx.y``, times ``N14``, data flags
of Table 8), and returns a ``Message``. ``build_segment`` is its inverse. Versions come from the Flag's bits 2-7:
0 = HJ/T 212-2005 (also assumed when Flag is absent: 2005 loggers send neither QN nor Flag), 1 = HJ 212-2017,
2 = HJ 212-2025 (domain/standards.md 2.3, 2.9).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from ingest.hj212.codec import MAX_DATA, Hj212Error, Refusal, split_frame, wrap


class Version(IntEnum):
    HJT212_2005 = 0
    HJ212_2017 = 1
    HJ212_2025 = 2


#: Table 9 of HJ 212-2017.
CN_2017 = frozenset(
    {
        "1000",
        "1011",
        "1012",
        "1013",
        "1061",
        "1062",
        "1063",
        "1064",
        "1072",
        "2011",
        "2012",
        "2021",
        "2022",
        "2031",
        "2041",
        "2051",
        "2061",
        "2081",
        "3011",
        "3012",
        "3013",
        "3014",
        "3015",
        "3016",
        "3017",
        "3018",
        "3019",
        "3020",
        "3021",
        "9011",
        "9012",
        "9013",
        "9014",
    }
)
#: HJ/T 212-2005 had alarm thresholds (1021/1022), host address (1031/1032), report time (1041/1042) and alarm
#: records/events (2071/2072), dropped in 2017.
CN_2005 = CN_2017 - {"1000", "1013", "1063", "1064", "2081", *(str(n) for n in range(3015, 3022))} | {
    "1021",
    "1022",
    "1031",
    "1032",
    "1041",
    "1042",
    "2071",
    "2072",
}
#: HJ 212-2025 additions known from one implementation (domain/standards.md 2.9).
CN_2025 = CN_2017 | {"1001", "1002", "1014", "2013", "2052", "2062", "2111", "3022", "3024", "9015"}
KNOWN_CN = {Version.HJT212_2005: CN_2005, Version.HJ212_2017: CN_2017, Version.HJ212_2025: CN_2025}

#: System codes of HJ 212-2017 Table 5 (10-29 environment quality, 30-49 sources, 50-69 process, 91-99
#: interaction) plus the extension range A0-Z9.
_ST = re.compile(r"^(2[1-7]|3[1-9]|41|5[12]|9[1-9]|[A-Z][0-9])$")
_QN = re.compile(r"^\d{17}$")
_MN = re.compile(r"^[0-9A-Za-z]{1,24}$")
_PW = re.compile(r"^[!-~]{0,6}$")  # C6, printable ASCII without ';'
_KEY = re.compile(r"^[A-Za-z0-9_]+(-[A-Za-z0-9_]+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_SEPARATOR = re.compile(r"[;,]")
_ORDER = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_REQUIRED = ("ST", "CN", "PW", "MN")
DATA_FLAGS = frozenset("NFMSDCTB")
MAX_LOG_BYTES = 890

#: CP items that are times (N14, YYYYMMDDhhmmss).
TIME_KEYS = frozenset({"DataTime", "BeginTime", "EndTime", "SystemTime", "RestartTime", "CstartTime", "SKCreateTime"})
TIME_SUFFIXES = frozenset({"SampleTime", "CompleteTime"})
#: CP items that are numbers (Nx.y).
NUMBER_KEYS = frozenset(
    {"QnRtn", "ExeRtn", "RtdInterval", "MinInterval", "OverTime", "ReCount", "VaseNo", "Ctime", "Stime"}
)
NUMBER_SUFFIXES = frozenset(
    {"Rtd", "Min", "Avg", "Max", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax", "Cou", "RS", "RT", "SampleRd", "StandardValue"}
)

CpValue = float | str | datetime


@dataclass(frozen=True, slots=True)
class Message:
    """One data segment. ``cp`` keeps the items as sent: groups (``;``) of (key, text) pairs (``,``)."""

    st: str
    cn: str
    mn: str
    pw: str = ""
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: tuple[tuple[tuple[str, str], ...], ...] = ()
    #: Typed CP items (numbers as float, N14 times as naive local datetimes, the rest as text).
    fields: dict[str, CpValue] = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> Version:
        return Version.HJT212_2005 if self.flag is None else Version(self.flag >> 2)

    @property
    def needs_ack(self) -> bool:
        """Flag bit A: the sender wants a reply (9014 for uploads)."""
        return self.flag is not None and bool(self.flag & 1)

    @property
    def split(self) -> bool:
        """Flag bit D: one packet of several (PNUM/PNO present)."""
        return self.flag is not None and bool(self.flag & 2)

    @property
    def data_time(self) -> datetime | None:
        value = self.fields.get("DataTime")
        return value if isinstance(value, datetime) else None

    @property
    def qn_time(self) -> datetime | None:
        return _qn_time(self.qn) if self.qn else None


def flag_of(version: Version, *, ack: bool = False, split: bool = False) -> int:
    return (int(version) << 2) | (2 if split else 0) | (1 if ack else 0)


def _qn_time(qn: str) -> datetime | None:
    when = parse_time(qn[:14])
    return None if when is None else when.replace(microsecond=int(qn[14:17]) * 1000)


def parse_time(text: str) -> datetime | None:
    """N14 local time ``YYYYMMDDhhmmss``, or None if it is not one."""
    if len(text) != 14 or not text.isascii() or not text.isdigit():
        return None
    try:
        return datetime(
            int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14])
        )
    except ValueError:
        return None


def parse_number(text: str) -> float | None:
    """An ``Nx.y`` number (optional sign, no exponent, at most 20 characters), or None."""
    if len(text) > 20 or not text.isascii() or _NUMBER.match(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def format_number(value: float | int) -> str:
    """Write a number the way Nx.y allows: positional notation, no exponent, no trailing zeros."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise Hj212Error(Refusal.BAD_NUMBER, f"{value!r} is not a finite number")
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _typed(key: str, text: str) -> CpValue:
    suffix = key.rpartition("-")[2] if "-" in key else ""
    if key in TIME_KEYS or suffix in TIME_SUFFIXES:
        when = parse_time(text)
        if when is None:
            raise Hj212Error(Refusal.BAD_TIME, f"{key}={text[:40]!r} is not YYYYMMDDhhmmss")
        return when
    if key in NUMBER_KEYS or suffix in NUMBER_SUFFIXES:
        number = parse_number(text)
        if number is None:
            raise Hj212Error(Refusal.BAD_NUMBER, f"{key}={text[:40]!r} is not a number")
        return number
    if suffix == "Flag":
        if text not in DATA_FLAGS:
            raise Hj212Error(Refusal.BAD_DATA_FLAG, f"{key}={text[:40]!r} is not one of N F M S D C T B")
        return text
    return text


def _parse_cp(body: str) -> tuple[tuple[tuple[tuple[str, str], ...], ...], dict[str, CpValue]]:
    """Split CP content into groups of (key, value); ``//...//`` values may hold any character."""
    groups: list[tuple[tuple[str, str], ...]] = []
    fields: dict[str, CpValue] = {}
    items: list[tuple[str, str]] = []
    pos, end = 0, len(body)
    while pos < end:
        eq = body.find("=", pos)
        if eq < 0:
            raise Hj212Error(Refusal.BAD_CP, f"item {body[pos : pos + 40]!r} has no '='")
        key = body[pos:eq]
        if _KEY.match(key) is None:
            raise Hj212Error(Refusal.BAD_CP, f"item name {key[:40]!r} is not a field name")
        if body.startswith("//", eq + 1):
            close = body.find("//", eq + 3)
            if close < 0:
                raise Hj212Error(Refusal.BAD_LOG, f"{key}: log text has no closing '//'")
            value = body[eq + 3 : close]
            if len(value.encode("utf-8")) >= MAX_LOG_BYTES:
                raise Hj212Error(
                    Refusal.BAD_LOG, f"{key}: log text of {len(value.encode())} bytes, limit {MAX_LOG_BYTES - 1}"
                )
            pos = close + 2
            if pos < end and body[pos] not in ";,":
                raise Hj212Error(Refusal.BAD_CP, f"{key}: text after the closing '//'")
            fields_value: CpValue = value
            items.append((key, "//" + value + "//"))
        else:
            pos = eq + 1
            found = _SEPARATOR.search(body, pos)
            stop = found.start() if found else end
            value = body[pos:stop]
            if "=" in value or "&" in value:
                raise Hj212Error(Refusal.BAD_CP, f"{key}: value {value[:40]!r} holds '=' or '&'")
            fields_value = _typed(key, value)
            items.append((key, value))
            pos = stop
        if key in fields:
            raise Hj212Error(Refusal.DUPLICATE_FIELD, f"CP item {key!r} appears twice")
        fields[key] = fields_value
        if pos >= end or body[pos] == ";":
            groups.append(tuple(items))
            items = []
        if pos < end:
            pos += 1
            if pos == end:
                raise Hj212Error(Refusal.BAD_CP, "CP ends with a separator")
    return tuple(groups), fields


def parse_segment(data: bytes | str) -> Message:
    """Parse a data segment (without length and CRC)."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Hj212Error(Refusal.BAD_ENCODING, f"not UTF-8 at byte {exc.start}") from None
    else:
        text = data
    cp_at = text.find("CP=&&")
    if cp_at < 0:
        raise Hj212Error(Refusal.MISSING_FIELD, "no CP=&&")
    if cp_at and text[cp_at - 1] != ";":
        raise Hj212Error(Refusal.BAD_FIELD, "CP is not preceded by ';'")
    cp_text = text[cp_at + 5 :]
    if len(cp_text) < 2 or not cp_text.endswith("&&"):
        raise Hj212Error(Refusal.BAD_CP, "CP does not end with &&")
    head: dict[str, str] = {}
    last = -1
    for item in text[: max(cp_at - 1, 0)].split(";") if cp_at else ():
        name, eq, value = item.partition("=")
        if not eq:
            raise Hj212Error(Refusal.BAD_FIELD, f"header item {item[:40]!r} is not Name=value")
        if name not in _ORDER:
            raise Hj212Error(Refusal.UNKNOWN_FIELD, f"header item {name[:20]!r} is not defined by the standard")
        if name in head:
            raise Hj212Error(Refusal.DUPLICATE_FIELD, f"{name} appears twice")
        rank = _ORDER.index(name)
        if rank < last:
            raise Hj212Error(
                Refusal.FIELD_ORDER, f"{name} after {_ORDER[last]}; order is QN;ST;CN;PW;MN;Flag;PNUM;PNO;CP"
            )
        last = rank
        head[name] = value
    for name in _REQUIRED:
        if name not in head:
            raise Hj212Error(Refusal.MISSING_FIELD, f"no {name}")
    qn = head.get("QN")
    if qn is not None and (_QN.match(qn) is None or _qn_time(qn) is None):
        raise Hj212Error(Refusal.BAD_QN, f"QN {qn[:30]!r} is not YYYYMMDDhhmmsszzz")
    if _ST.match(head["ST"]) is None:
        raise Hj212Error(Refusal.BAD_ST, f"ST {head['ST'][:10]!r} is not a system code")
    if _PW.match(head["PW"]) is None:
        raise Hj212Error(Refusal.BAD_PW, "PW is longer than 6 characters or not printable ASCII")
    if _MN.match(head["MN"]) is None:
        raise Hj212Error(Refusal.BAD_MN, f"MN {head['MN'][:30]!r} is not 1-24 letters or digits")
    flag: int | None = None
    if "Flag" in head:
        text_flag = head["Flag"]
        if not (text_flag.isascii() and text_flag.isdigit() and len(text_flag) <= 3 and int(text_flag) <= 255):
            raise Hj212Error(Refusal.BAD_FLAG, f"Flag {text_flag[:10]!r} is not an 8-bit integer")
        flag = int(text_flag)
        if flag >> 2 not in Version._value2member_map_:
            raise Hj212Error(
                Refusal.UNKNOWN_VERSION, f"Flag {flag}: version bits {flag >> 2} are not 2005 (0), 2017 (1) or 2025 (2)"
            )
    version = Version.HJT212_2005 if flag is None else Version(flag >> 2)
    cn = head["CN"]
    if cn not in KNOWN_CN[version]:
        raise Hj212Error(Refusal.UNKNOWN_CN, f"CN {cn[:10]!r} is not a command of {_NAMES[version]}")
    pnum = pno = None
    split = flag is not None and bool(flag & 2)
    if split or "PNUM" in head or "PNO" in head:
        if not split:
            raise Hj212Error(Refusal.BAD_PACKET_NUMBER, "PNUM/PNO without the split bit (D) in Flag")
        if "PNUM" not in head or "PNO" not in head:
            raise Hj212Error(Refusal.MISSING_FIELD, "the split bit (D) is set but PNUM or PNO is missing")
        pnum, pno = _count(head["PNUM"]), _count(head["PNO"])
        if pnum is None or pno is None or not 1 <= pno <= pnum:
            raise Hj212Error(Refusal.BAD_PACKET_NUMBER, f"PNUM={head['PNUM'][:10]!r} PNO={head['PNO'][:10]!r}")
    groups, fields = _parse_cp(cp_text[:-2])
    return Message(
        st=head["ST"],
        cn=cn,
        mn=head["MN"],
        pw=head["PW"],
        qn=qn,
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=groups,
        fields=fields,
    )


_NAMES = {Version.HJT212_2005: "HJ/T 212-2005", Version.HJ212_2017: "HJ 212-2017", Version.HJ212_2025: "HJ 212-2025"}


def _count(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def parse_frame(frame: bytes, *, max_data: int = MAX_DATA) -> Message:
    """Check and parse one whole frame (trailing CRLF optional)."""
    return parse_segment(split_frame(frame, max_data=max_data))


def cp_groups(items: dict[str, object] | list[dict[str, object]]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """CP groups from a dict (one item per group) or a list of dicts (one group each); numbers formatted."""
    dicts = [items] if isinstance(items, dict) else items
    groups = []
    for group in dicts:
        pairs = []
        for key, value in group.items():
            if isinstance(value, datetime):
                text = value.strftime("%Y%m%d%H%M%S")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                text = format_number(value)
            else:
                text = str(value)
            pairs.append((key, text))
        if isinstance(items, dict):
            groups += [(pair,) for pair in pairs]
        else:
            groups.append(tuple(pairs))
    return tuple(groups)


def build_segment(message: Message) -> str:
    """Write a message as a data segment (the inverse of ``parse_segment``)."""
    head = [
        ("QN", message.qn),
        ("ST", message.st),
        ("CN", message.cn),
        ("PW", message.pw),
        ("MN", message.mn),
        ("Flag", None if message.flag is None else str(message.flag)),
        ("PNUM", None if message.pnum is None else str(message.pnum)),
        ("PNO", None if message.pno is None else str(message.pno)),
    ]
    cp = ";".join(",".join(f"{k}={v}" for k, v in group) for group in message.cp)
    return "".join(f"{name}={value};" for name, value in head if value is not None) + f"CP=&&{cp}&&"


def build_frame(message: Message, *, crlf: bool = True, lowercase: bool = False, max_data: int = MAX_DATA) -> bytes:
    return wrap(build_segment(message), crlf=crlf, lowercase=lowercase, max_data=max_data)


def new_qn(when: datetime) -> str:
    """A QN for ``when`` (local time, to the millisecond)."""
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


__all__ = [
    "CN_2005",
    "CN_2017",
    "CN_2025",
    "DATA_FLAGS",
    "Message",
    "Version",
    "build_frame",
    "build_segment",
    "cp_groups",
    "flag_of",
    "format_number",
    "new_qn",
    "parse_frame",
    "parse_number",
    "parse_segment",
    "parse_time",
    "split_frame",
]
