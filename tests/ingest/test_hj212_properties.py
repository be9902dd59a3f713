"""Property tests of the HJ 212 codec: build -> parse round trips; no input raises anything but Hj212Error."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.hj212 import Hj212Error, Message, Version, build_frame, flag_of, parse_frame, wrap
from ingest.hj212.segment import CN_2005, CN_2017, CN_2025, DATA_FLAGS, KNOWN_CN, new_qn, parse_segment
from ingest.hj212.split import Reassembler

FACTORS = ["w01018", "w21003", "w00000", "w01001", "a24088", "a34013", "a19001", "011", "B01", "SB1"]
SUFFIXES = ["Rtd", "Min", "Avg", "Max", "ZsAvg", "Cou", "RS", "RT"]

numbers = st.integers(-(10**12), 10**12).flatmap(lambda n: st.sampled_from([0, 1, 2, 3, 4]).map(lambda k: n / 10**k))
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(microsecond=0)
)
log_text = st.text(st.characters(exclude_characters="/", exclude_categories=("Cs",)), max_size=40)


@st.composite
def messages(draw) -> Message:
    version = draw(st.sampled_from(list(Version)))
    legacy = version is Version.HJT212_2005 and draw(st.booleans())
    flag = None if legacy else flag_of(version, ack=draw(st.booleans()))
    groups: list[tuple[tuple[str, str], ...]] = []
    if draw(st.booleans()):
        groups.append((("DataTime", draw(times).strftime("%Y%m%d%H%M%S")),))
    used: set[str] = set()
    for factor in draw(st.lists(st.sampled_from(FACTORS), max_size=6, unique=True)):
        items = []
        for suffix in draw(st.lists(st.sampled_from(SUFFIXES), min_size=1, max_size=4, unique=True)):
            value = draw(numbers)
            items.append((f"{factor}-{suffix}", format(value, ".4f").rstrip("0").rstrip(".")))
        if draw(st.booleans()):
            items.append((f"{factor}-Flag", draw(st.sampled_from(sorted(DATA_FLAGS)))))
        used |= {k for k, _ in items}
        groups.append(tuple(items))
    if draw(st.booleans()):
        groups.append((("i11001-Info", "//" + draw(log_text) + "//"),))
    qn = None if legacy else new_qn(draw(times))
    return Message(
        st=draw(st.sampled_from(["31", "32", "27", "91", "A1"])),
        cn=draw(st.sampled_from(sorted(KNOWN_CN[version]))),
        mn=draw(st.text("0123456789ABCDEFabcdef", min_size=1, max_size=24)),
        pw=draw(st.text("0123456789abcXYZ", max_size=6)),
        qn=qn,
        flag=flag,
        cp=tuple(groups),
    )


@given(messages(), st.booleans(), st.booleans())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_build_then_parse_round_trips(message: Message, lowercase: bool, crlf: bool) -> None:
    try:
        frame = build_frame(message, lowercase=lowercase, crlf=crlf)
    except Hj212Error:
        return  # too long for one frame: refused when building
    parsed = parse_frame(frame)
    assert parsed == message
    assert build_frame(parsed, lowercase=lowercase, crlf=crlf) == frame
    for group in message.cp:
        for key, text in group:
            value = parsed.fields[key]
            if text.startswith("//"):
                assert value == text[2:-2]
            elif key == "DataTime":
                assert value.strftime("%Y%m%d%H%M%S") == text
            elif key.endswith("-Flag"):
                assert value == text
            else:
                assert value == float(text)


@given(st.binary(max_size=1200))
@settings(max_examples=800)
def test_arbitrary_bytes_raise_only_the_codec_error(data: bytes) -> None:
    for frame in (data, b"##" + data, b"##%04d" % len(data) + data + b"0000\r\n"):
        try:
            parse_frame(frame)
        except Hj212Error:
            pass


@given(st.binary(max_size=1024))
@settings(max_examples=800)
def test_arbitrary_data_segments_with_valid_framing_raise_only_the_codec_error(data: bytes) -> None:
    try:
        parse_frame(wrap(data))
    except Hj212Error:
        pass


@given(messages(), st.data())
@settings(max_examples=500)
def test_mutated_segments_raise_only_the_codec_error(message: Message, data: st.DataObject) -> None:
    try:
        segment = bytearray(build_frame(message, crlf=False)[6:-4])
    except Hj212Error:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, max(len(segment) - 1, 0)))
        segment[where : where + 1] = data.draw(
            st.sampled_from([b"", b";", b",", b"=", b"&", b"/", b"\xff", b"9", b"-", b"\x00", "日".encode()])
        )
    try:
        parse_segment(bytes(segment))
        parse_frame(wrap(bytes(segment)))
    except Hj212Error:
        pass


@given(st.lists(messages(), max_size=8), st.randoms())
@settings(max_examples=100)
def test_reassembler_never_raises_but_the_codec_error(parts: list[Message], rnd) -> None:
    assembler = Reassembler(max_pending=3)
    for i, message in enumerate(parts):
        pnum = rnd.randint(1, 3)
        split = Message(
            st=message.st,
            cn=message.cn,
            mn=message.mn,
            pw=message.pw,
            qn=message.qn,
            flag=(message.flag or 0) | 2,
            pnum=pnum,
            pno=rnd.randint(1, pnum),
            cp=message.cp,
        )
        try:
            parsed = parse_frame(build_frame(split))
            assembler.add(parsed)
        except Hj212Error:
            pass
        assert len(assembler) <= 3, i


def test_version_tables_are_consistent() -> None:
    assert "9015" in CN_2025 and "9015" not in CN_2017
    assert "2072" in CN_2005 and "2072" not in CN_2017
    assert {"2011", "2051", "2061", "2031", "2021", "2041", "9014"} <= CN_2005 & CN_2017 & CN_2025
