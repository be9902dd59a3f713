"""HJ 212 framing: ``##`` + 4-digit length + data segment + CRC16 + CRLF (HJ 212-2017 section 6.3.1, Table 2).

Pure functions, no I/O. The length counts the UTF-8 *bytes* of the data segment and the CRC is computed over the
same bytes (only ``//log//`` text may be non-ASCII, domain/standards.md 2.2). The CRC is the standard's Appendix A
"CRC16", which is not Modbus CRC: init 0xFFFF, each byte XORed into the *high* byte shifted down, eight rounds
with 0xA001; written high byte first as four hex digits, upper or lower case on input. Every refusal raises
``Hj212Error`` with a named ``Refusal``; nothing else escapes these functions.
"""

from __future__ import annotations

from enum import StrEnum

#: Largest data segment HJ 212-2017 allows (Table 2: 0 <= n <= 1024).
MAX_DATA = 1024
HEADER = b"##"
CRLF = b"\r\n"


class Refusal(StrEnum):
    """Why a frame (or a message built from frames) is refused; stored as the dead letter's reason."""

    TOO_SHORT = "too_short"  # fewer bytes than ## + length + CRC
    BAD_HEADER = "bad_header"  # does not start with ##
    BAD_LENGTH = "bad_length"  # the length field is not 4 decimal digits
    TOO_LONG = "too_long"  # data segment longer than MAX_DATA
    LENGTH_MISMATCH = "length_mismatch"  # the declared length differs from the data segment's UTF-8 bytes
    BAD_CRC = "bad_crc"  # the CRC field is not 4 hex digits
    CRC_MISMATCH = "crc_mismatch"  # the CRC does not match the data segment
    BAD_ENCODING = "bad_encoding"  # the data segment is not UTF-8
    BAD_FIELD = "bad_field"  # a header item is not Name=value
    MISSING_FIELD = "missing_field"  # ST, CN, PW, MN or CP absent (PNUM/PNO when split)
    DUPLICATE_FIELD = "duplicate_field"
    UNKNOWN_FIELD = "unknown_field"  # a header item the standard does not define
    FIELD_ORDER = "field_order"  # header items out of the order QN;ST;CN;PW;MN;Flag;PNUM;PNO;CP
    BAD_QN = "bad_qn"  # QN is not YYYYMMDDhhmmsszzz
    BAD_ST = "bad_st"  # ST is not a system code of Table 5
    UNKNOWN_CN = "unknown_cn"  # CN is not a command of Table 9 (for the frame's version)
    BAD_PW = "bad_pw"
    BAD_MN = "bad_mn"
    BAD_FLAG = "bad_flag"  # Flag is not an 8-bit integer
    UNKNOWN_VERSION = "unknown_version"  # Flag version bits other than 2005, 2017, 2025
    BAD_PACKET_NUMBER = "bad_packet_number"  # PNUM/PNO not 1 <= PNO <= PNUM, or present without the split bit
    BAD_CP = "bad_cp"  # CP not wrapped in && ... &&, or an item is not key=value
    BAD_NUMBER = "bad_number"  # a numeric field (Nx.y) is not a number
    BAD_TIME = "bad_time"  # a time field (N14) is not YYYYMMDDhhmmss
    BAD_DATA_FLAG = "bad_data_flag"  # an -Flag value outside N F M S D C T B (Table 8)
    BAD_LOG = "bad_log"  # //log// text unterminated or 890 bytes or longer
    # Split packets (Flag D bit), found when reassembling
    SPLIT_INCOMPLETE = "split_incomplete"
    SPLIT_CONFLICT = "split_conflict"


class Hj212Error(ValueError):
    """A refused frame: ``reason`` names the rule it broke, ``detail`` says where."""

    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


def _table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()
#: Only the high byte of the running CRC feeds the next step, so the loop can carry that byte alone.
_HIGH = tuple(value >> 8 for value in _TABLE)
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")


def crc16(data: bytes) -> int:
    """HJ 212-2017 Appendix A CRC16 of ``data``.

    The standard's loop, ``crc = (crc >> 8) ^ byte`` then eight shift/XOR-0xA001 rounds, only ever works on a value
    below 256, so each step is one lookup in the reflected 0xA001 table.
    """
    if not data:
        return 0xFFFF
    high = 0xFF
    table = _HIGH
    for byte in memoryview(data)[:-1]:
        high = table[high ^ byte]
    return _TABLE[high ^ data[-1]]


def split_frame(frame: bytes, *, max_data: int = MAX_DATA) -> bytes:
    """Check header, length and CRC of one frame (trailing CRLF optional); return its data segment bytes."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise Hj212Error(Refusal.BAD_HEADER, f"expected bytes, got {type(frame).__name__}")
    frame = bytes(frame)
    if frame.endswith(CRLF):
        frame = frame[:-2]
    if len(frame) < 10:
        raise Hj212Error(Refusal.TOO_SHORT, f"{len(frame)} bytes; a frame has at least 10 before CRLF")
    if frame[:2] != HEADER:
        raise Hj212Error(Refusal.BAD_HEADER, f"starts with {frame[:2]!r}, not '##'")
    length_field = frame[2:6]
    if not all(b in _DIGITS for b in length_field):
        raise Hj212Error(Refusal.BAD_LENGTH, f"length field {length_field!r} is not 4 decimal digits")
    declared = int(length_field)
    data, crc_field = frame[6:-4], frame[-4:]
    if declared > max_data or len(data) > max_data:
        raise Hj212Error(Refusal.TOO_LONG, f"data segment of {max(declared, len(data))} bytes exceeds {max_data}")
    if len(data) != declared:
        raise Hj212Error(
            Refusal.LENGTH_MISMATCH, f"length field says {declared} bytes, data segment has {len(data)} (UTF-8 bytes)"
        )
    if not all(b in _HEX for b in crc_field):
        raise Hj212Error(Refusal.BAD_CRC, f"CRC field {crc_field!r} is not 4 hex digits")
    expected = crc16(data)
    if int(crc_field, 16) != expected:
        raise Hj212Error(Refusal.CRC_MISMATCH, f"CRC {crc_field.decode()} given, {expected:04X} computed")
    return data


def wrap(data: bytes | str, *, crlf: bool = True, lowercase: bool = False, max_data: int = MAX_DATA) -> bytes:
    """Build a frame around a data segment (length in UTF-8 bytes, CRC high byte first)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_data:
        raise Hj212Error(Refusal.TOO_LONG, f"data segment of {len(raw)} bytes exceeds {max_data}")
    crc = format(crc16(raw), "04x" if lowercase else "04X").encode()
    return HEADER + b"%04d" % len(raw) + raw + crc + (CRLF if crlf else b"")
