"""The HJ 212 codec against the standard's frames (../shared/data/hj212) and against frames built here."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

from ingest.hj212 import Hj212Error, Message, Refusal, Version, build_frame, crc16, flag_of, parse_frame, wrap
from ingest.hj212.check import check_lines
from ingest.hj212.segment import build_segment, cp_groups, parse_segment
from ingest.hj212.split import Reassembler
from tests.support import REPO_ROOT, shared_data_dir

FRAMES = shared_data_dir() / "hj212" / "frames.txt"
MN = "010000A8900016F000169DC0"


def shared_frames() -> list[bytes]:
    if not FRAMES.exists():
        pytest.skip(f"{FRAMES} is absent (public data folder not beside the repository)")
    return [line.rstrip(b"\r\n") for line in FRAMES.read_bytes().splitlines() if line.startswith(b"##")]


def frame_of(segment: str | bytes, **kw) -> bytes:
    return wrap(segment, **kw)


def refused(frame: bytes) -> Refusal:
    with pytest.raises(Hj212Error) as info:
        parse_frame(frame)
    return info.value.reason


# --- the standard's frames ----------------------------------------------------------------------------------


def test_every_shared_frame_parses_and_rebuilds_byte_for_byte() -> None:
    frames = shared_frames()
    assert len(frames) == 8
    for frame in frames:
        message = parse_frame(frame)
        assert message.version is Version.HJ212_2017
        assert build_frame(message, crlf=False) == frame


def test_appendix_a_crc_is_1c80_not_the_prose_1c08() -> None:
    frame = shared_frames()[0]
    assert frame.endswith(b"1C80")
    assert crc16(frame[6:-4]) == 0x1C80
    assert refused(frame[:-4] + b"1C08") is Refusal.CRC_MISMATCH


def test_hourly_frame_fields() -> None:
    message = parse_frame(shared_frames()[-1] + b"\r\n")
    assert message.cn == "2061" and message.st == "32" and message.mn == MN
    assert message.needs_ack and not message.split
    assert message.data_time == datetime(2016, 8, 1, 8, 0)
    assert message.fields["w01018-Avg"] == 40.1
    assert message.fields["w00000-Cou"] == 63.0
    assert message.fields["w01001-Flag"] == "N"
    assert [g[0][0] for g in message.cp] == ["DataTime", "w00000-Cou", "w01001-Min", "w01018-Cou"]


def test_lower_case_crc_is_accepted() -> None:
    frame = shared_frames()[2]
    assert parse_frame(frame[:-4] + frame[-4:].lower()).cn == "9011"


def test_not_modbus_crc() -> None:
    data = shared_frames()[0][6:-4]
    assert crc16(data) != 0x0759  # the Modbus CRC of the same segment (domain/standards.md 2.8)


# --- refusals: every reason named ---------------------------------------------------------------------------

GOOD = (
    f"QN=20240501120000123;ST=32;CN=2011;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20240501120000;"
    "w01018-Rtd=12.3,w01018-Flag=N&&"
)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"##0010", Refusal.TOO_SHORT),
        (b"$$" + frame_of(GOOD)[2:], Refusal.BAD_HEADER),
        (b"##01a2" + frame_of(GOOD)[6:], Refusal.BAD_LENGTH),
        (frame_of(GOOD)[:2] + b"%04d" % (len(GOOD) + 1) + frame_of(GOOD)[6:], Refusal.LENGTH_MISMATCH),
        (b"##2000" + b"A" * 2000 + b"0000", Refusal.TOO_LONG),
        (frame_of(GOOD)[:-6] + b"12G4", Refusal.BAD_CRC),
        (frame_of(GOOD)[:-6] + b"0000", Refusal.CRC_MISMATCH),
        (frame_of(GOOD.replace("12.3", "12.4"))[:-6] + frame_of(GOOD)[-6:-2], Refusal.CRC_MISMATCH),
        (frame_of(GOOD.encode().replace(b"12.3", b"\xff\xfe.3")), Refusal.BAD_ENCODING),
        (frame_of(GOOD.replace("CN=2011;PW=123456", "PW=123456;CN=2011")), Refusal.FIELD_ORDER),
        (frame_of(GOOD.replace("MN=", "XX=")), Refusal.UNKNOWN_FIELD),
        (frame_of(GOOD.replace(f"MN={MN};", "")), Refusal.MISSING_FIELD),
        (frame_of(GOOD.replace("CP=&&", "CP=")), Refusal.MISSING_FIELD),
        (frame_of(GOOD.replace("ST=32;", "ST=32;ST=32;")), Refusal.DUPLICATE_FIELD),
        (frame_of(GOOD.replace("ST=32;", "ST32;")), Refusal.BAD_FIELD),
        (frame_of(GOOD.replace("QN=20240501120000123", "QN=20241301120000123")), Refusal.BAD_QN),
        (frame_of(GOOD.replace("ST=32", "ST=99X")), Refusal.BAD_ST),
        (frame_of(GOOD.replace("CN=2011", "CN=2099")), Refusal.UNKNOWN_CN),
        (frame_of(GOOD.replace("CN=2011", "CN=9015")), Refusal.UNKNOWN_CN),  # a 2025 heartbeat in a 2017 frame
        (frame_of(GOOD.replace("PW=123456", "PW=1234567")), Refusal.BAD_PW),
        (frame_of(GOOD.replace(f"MN={MN}", "MN=A-B")), Refusal.BAD_MN),
        (frame_of(GOOD.replace("Flag=5", "Flag=x5")), Refusal.BAD_FLAG),
        (frame_of(GOOD.replace("Flag=5", "Flag=300")), Refusal.BAD_FLAG),
        (frame_of(GOOD.replace("Flag=5", "Flag=13")), Refusal.UNKNOWN_VERSION),  # version bits 3
        (frame_of(GOOD.replace("Flag=5", "Flag=5;PNUM=2;PNO=1")), Refusal.BAD_PACKET_NUMBER),
        (frame_of(GOOD.replace("Flag=5", "Flag=7;PNUM=2;PNO=3")), Refusal.BAD_PACKET_NUMBER),
        (frame_of(GOOD.replace("Flag=5", "Flag=7")), Refusal.MISSING_FIELD),
        (frame_of(GOOD[:-2]), Refusal.BAD_CP),
        (frame_of(GOOD.replace(",w01018-Flag=N", ",w01018-Flag")), Refusal.BAD_CP),
        (frame_of(GOOD.replace("N&&", "N;&&")), Refusal.BAD_CP),
        (frame_of(GOOD.replace("12.3", "12,3")), Refusal.BAD_CP),
        (frame_of(GOOD.replace("12.3", "1.2e3")), Refusal.BAD_NUMBER),
        (frame_of(GOOD.replace("12.3", "")), Refusal.BAD_NUMBER),
        (frame_of(GOOD.replace("DataTime=20240501120000", "DataTime=20240501126000")), Refusal.BAD_TIME),
        (frame_of(GOOD.replace("Flag=N", "Flag=X")), Refusal.BAD_DATA_FLAG),
        (frame_of(GOOD.replace("w01018-Flag=N", "w01018-Flag=N;w01018-Flag=N")), Refusal.DUPLICATE_FIELD),
        (
            frame_of(GOOD.replace("CN=2011", "CN=3020").replace("w01018-Flag=N", "i11001-Info=//没有结尾")),
            Refusal.BAD_LOG,
        ),
        (frame_of("ST=32;CN=3020;PW=1;MN=A;Flag=4;CP=&&i11001-Info=//" + "日" * 297 + "//&&"), Refusal.BAD_LOG),
    ],
)
def test_refusal_reasons(frame: bytes, reason: Refusal) -> None:
    assert refused(frame) is reason


def test_every_codec_reason_is_exercised() -> None:
    """The parametrised list above names every refusal the codec itself can give."""
    source = (REPO_ROOT / "tests" / "ingest" / "test_hj212_codec.py").read_text(encoding="utf-8")
    split_only = {Refusal.SPLIT_CONFLICT, Refusal.SPLIT_INCOMPLETE}
    missing = [r for r in Refusal if r not in split_only and f"Refusal.{r.name})" not in source]
    assert not missing


def test_length_counts_utf8_bytes_of_chinese_log_text() -> None:
    segment = (
        f"QN=20240501120000123;ST=32;CN=3020;PW=123456;MN={MN};Flag=4;"
        "CP=&&DataTime=20240501120000;PolId=w01018;i11001-Info=//仪器维护，更换试剂;原因=定期//&&"
    )
    frame = frame_of(segment)
    message = parse_frame(frame)
    assert message.fields["i11001-Info"] == "仪器维护，更换试剂;原因=定期"
    assert int(frame[2:6]) == len(segment.encode()) > len(segment)
    by_characters = b"##%04d" % len(segment) + frame[6:]  # the mistake some libraries make
    assert refused(by_characters) is Refusal.LENGTH_MISMATCH
    assert build_frame(message) == frame


# --- versions -----------------------------------------------------------------------------------------------


def test_hjt_212_2005_frame_without_qn_and_flag_with_three_digit_codes() -> None:
    segment = (
        "ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&DataTime=20160824003817;B01-Rtd=36.91;"
        "011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&"
    )
    message = parse_frame(frame_of(segment, lowercase=True))
    assert message.version is Version.HJT212_2005 and message.qn is None and message.flag is None
    assert not message.needs_ack
    assert message.fields["011-Rtd"] == 231.0 and message.fields["060-Flag"] == "N"
    assert message.data_time == datetime(2016, 8, 24, 0, 38, 17)
    assert parse_frame(frame_of(segment.replace("CN=2011", "CN=2072"))).cn == "2072"  # 2005-only alarm event


def test_hj_212_2025_flag_and_new_commands() -> None:
    heartbeat = f"QN=20260105080000000;ST=32;CN=9015;PW=123456;MN={MN};Flag=9;CP=&&&&"
    message = parse_frame(frame_of(heartbeat))
    assert (
        message.version is Version.HJ212_2025
        and message.needs_ack
        and message.flag == flag_of(Version.HJ212_2025, ack=True)
    )
    assert refused(frame_of(heartbeat.replace("Flag=9", "Flag=5"))) is Refusal.UNKNOWN_CN


# --- split packets ------------------------------------------------------------------------------------------


def _parts() -> list[Message]:
    groups = [
        cp_groups([{"DataTime": "20240501120000"}, {"w01018-Rtd": 12.5, "w01018-Flag": "N"}]),
        cp_groups([{"DataTime": "20240501120000"}, {"w21003-Rtd": 1.25, "w21003-Flag": "M"}]),
    ]
    return [
        parse_frame(
            build_frame(
                Message(
                    st="32", cn="2011", mn=MN, pw="123456", qn=f"2024050112000012{i}", flag=7, pnum=2, pno=i + 1, cp=g
                )
            )
        )
        for i, g in enumerate(groups)
    ]


def test_split_packets_are_reassembled_in_any_order() -> None:
    first, second = _parts()
    assembler = Reassembler()
    assert assembler.add(second) is None and len(assembler) == 1
    whole = assembler.add(first)
    assert whole is not None and not whole.split and whole.pnum is None
    assert whole.fields["w01018-Rtd"] == 12.5 and whole.fields["w21003-Flag"] == "M"
    assert whole.data_time == datetime(2024, 5, 1, 12, 0)
    assert parse_segment(build_segment(whole)).fields == whole.fields
    assert len(assembler) == 0


def test_split_conflict_and_incomplete() -> None:
    first, second = _parts()
    clash = parse_frame(
        build_frame(
            Message(
                st="32",
                cn="2011",
                mn=MN,
                pw="123456",
                qn="20240501120000129",
                flag=7,
                pnum=2,
                pno=2,
                cp=cp_groups([{"DataTime": "20240501120000"}, {"w01018-Rtd": 99}]),
            )
        )
    )
    assembler = Reassembler()
    assembler.add(first)
    with pytest.raises(Hj212Error) as info:
        assembler.add(clash)
    assert info.value.reason is Refusal.SPLIT_CONFLICT
    now = [0.0]
    waiting = Reassembler(timeout_s=10, clock=lambda: now[0])
    waiting.add(first)
    now[0] = 11.0
    [(parts, detail)] = waiting.expire()
    assert parts == [first] and "[1] of 2" in detail and len(waiting) == 0


# --- ehs hj212 check ----------------------------------------------------------------------------------------


def test_check_lines_reports_each_line_and_a_summary() -> None:
    lines = [*shared_frames(), b"", b"# comment", frame_of(GOOD)[:-6] + b"0000", *(build_frame(p) for p in _parts())]
    out = list(check_lines(lines))
    assert [o["valid"] for o in out[:-1]] == [True] * 8 + [False, True, True]
    assert out[8]["reason"] == "crc_mismatch" and out[8]["cn"] is None
    assert out[7]["fields"]["w01018-Avg"] == 40.1 and out[7]["data_time"] == "2016-08-01T08:00:00+08:00"
    assert out[-1] == {
        "summary": True,
        "frames": 11,
        "valid": 10,
        "invalid": 1,
        "split_messages": 1,
        "split_incomplete": 0,
        "reasons": {"crc_mismatch": 1},
    }


def test_cli_check_prints_json_lines(tmp_path) -> None:
    path = tmp_path / "frames.txt"
    path.write_bytes(b"\r\n".join([*shared_frames(), b"##0005hello0000"]) + b"\r\n")
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "hj212", "check", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1  # some frame was invalid
    assert len(lines) == 10
    assert lines[8]["valid"] is False and lines[8]["reason"] == "crc_mismatch"
    assert set(lines[0]) >= {"valid", "reason", "cn", "st", "mn", "data_time", "fields"}
    assert lines[-1]["summary"] is True and lines[-1]["valid"] == 8
