"""Fuzzing the spool (issue 11, items 4 and 7): batches with hostile text round-trip; a file truncated, with
flipped bytes or of another version is set aside (never replayed wrong, never an exception), and the files
after it are still replayed."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from core.model import Finding, Severity, SubjectRef
from core.text import storable
from ingest.decoders import Decoded, Reason, Reject, StatusChange
from ingest.spool import Spool, decode, encode
from tests.fuzzing import budget, odd_text

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

rows = st.lists(
    st.tuples(
        st.integers(-(10**6), 10**6).map(lambda s: NOW + timedelta(milliseconds=s)),
        st.integers(1, 2**31 - 1),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        st.integers(0, 2),
    ),
    max_size=5,
)
rejects = st.lists(
    st.builds(
        lambda topic, payload, reason, detail, site: Reject(
            topic, payload, len(payload), NOW, reason, detail, site, None
        ),
        odd_text,
        st.binary(max_size=50),
        st.sampled_from(list(Reason)),
        odd_text,
        st.one_of(st.none(), odd_text),
    ),
    max_size=3,
)
statuses = st.lists(
    st.builds(lambda d, s: StatusChange(d, s, NOW), st.integers(1, 1000), st.sampled_from(["online", "offline"])),
    max_size=2,
)
findings = st.lists(
    st.builds(
        lambda msg, score: Finding(
            "r1",
            "high_limit",
            SubjectRef("s1", "a", "d", "p"),
            Severity.HIGH,
            NOW,
            score=score,
            message=msg,
            details={"k": msg},
        ),
        odd_text,
        st.one_of(st.none(), st.floats(-1e6, 1e6)),
    ),
    max_size=2,
)
batches = st.builds(lambda r, j, s, f: (Decoded(r, j, s), f), rows, rejects, statuses, findings)


def _same(a: tuple[Decoded, list], b: tuple[Decoded, list]) -> bool:
    da, db = a[0], b[0]
    return (
        da.rows == db.rows
        and da.statuses == db.statuses
        and len(da.rejects) == len(db.rejects)
        and all(
            x.payload == y.payload and storable(x.topic, 100_000) == y.topic and x.reason == y.reason
            for x, y in zip(da.rejects, db.rejects, strict=True)
        )
        and [f.severity for f in a[1]] == [f.severity for f in b[1]]
    )


@budget(200)
@given(batches)
def test_any_batch_round_trips(batch: tuple[Decoded, list]) -> None:
    assert _same(batch, decode(encode(*batch)))


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("version"), st.sampled_from([b"0", b"1", b"3", b"22", b"x", b""])),
    st.tuples(st.just("garbage"), st.binary(max_size=64)),
)


def _mutate(data: bytes, mutation: tuple) -> bytes:
    kind = mutation[0]
    if kind == "truncate":
        return data[: int(len(data) * mutation[1])]
    if kind == "flip":
        i = int(len(data) * mutation[1])
        return data[:i] + bytes([data[i] ^ mutation[2]]) + data[i + 1 :]
    if kind == "version":
        return data.replace(b"EHS-SPOOL 2 ", b"EHS-SPOOL " + mutation[1] + b" ", 1)
    return mutation[1]


@budget(300)
@given(batches, mutations, batches)
def test_a_damaged_file_is_set_aside_and_the_next_one_replays(damaged: tuple, mutation: tuple, after: tuple) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reported: list[Path] = []
        spool = Spool(Path(tmp), on_quarantine=lambda path, reason: reported.append(path))
        first = spool.append(*damaged)
        second = spool.append(*after)
        original = first.read_bytes()
        first.write_bytes(_mutate(original, mutation))
        replayed = list(spool.replay())
        changed = first.read_bytes() != original if first.exists() else True
        if changed:
            assert [p for p, *_ in replayed] == [second] and len(reported) == 1
            assert (Path(tmp) / "failed" / first.name).exists()
        else:
            assert [p for p, *_ in replayed] == [first, second] and reported == []
        assert _same(after, (replayed[-1][1], replayed[-1][2]))


def test_regression_a_non_numeric_spool_name_no_longer_crashes_ingest_at_start(tmp_path: Path) -> None:
    """``int(existing[-1].stem)`` raised ValueError in ``Spool.__init__`` for a file such as ``notes.batch``."""
    (tmp_path / "notes.batch").write_bytes(b"{}")
    spool = Spool(tmp_path)
    path = spool.append(Decoded(rows=[(NOW, 1, 1.0, 0)]))
    assert path.name == "000000000001.batch"
    assert [p for p, *_ in spool.replay()] == [path] and (tmp_path / "failed" / "notes.batch").exists()


def test_regression_a_lone_surrogate_in_a_reject_no_longer_makes_the_spool_append_raise(tmp_path: Path) -> None:
    """orjson refuses lone surrogates; a failed append killed the record thread."""
    spool = Spool(tmp_path)
    spool.append(Decoded(rejects=[Reject("ehs/v1/\udc80/x/telemetry", b"", 0, NOW, Reason.BAD_TOPIC, "\ud800")]))
    [(_, decoded, _)] = list(spool.replay())
    assert decoded.rejects[0].topic == "ehs/v1/\\udc80/x/telemetry"
