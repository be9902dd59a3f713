"""Hypothesis profiles and strategies of hostile device input, shared by the fuzz tests (issue 11).

Profiles: ``ci`` (the default: a fixed seed through ``derandomize``, no example database, a fixed example
budget per test, so that the whole fuzz set is reproducible and costs a few minutes) and ``long`` (random,
``EHS_FUZZ_SCALE`` times the budget: ``ehs fuzz --minutes N`` runs it again and again). Choose with
``EHS_FUZZ_PROFILE``.
"""

from __future__ import annotations

import math
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("EHS_FUZZ_PROFILE", "ci")
SCALE = float(os.environ.get("EHS_FUZZ_SCALE", "1"))


def budget(examples: int) -> settings:
    """Settings of one fuzz test: the profile, with ``examples`` examples (times the scale of a long run)."""
    return settings(settings.get_profile(PROFILE), max_examples=max(1, math.ceil(examples * SCALE)))


# --- hostile values -----------------------------------------------------------------------------------------

#: Text with what databases and JSON parsers trip on: NUL, control characters, lone surrogates, CJK, RTL, emoji.
odd_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            [
                "\x00",
                "\x01",
                "\x7f",
                "\ud800",
                "\udfff",
                "\u202e",
                "\ufeff",
                "\U0001f525",
                "氢",
                "'",
                '"',
                "\\",
                "%",
                "/",
                "+",
                "#",
                "$",
            ]
        ),
        st.characters(),
    ),
    max_size=40,
)

#: Text that surely holds what trips databases: odd text with a NUL or a lone surrogate put in.
nasty_text = st.one_of(
    st.tuples(odd_text, st.sampled_from(["\x00", "\ud800", "\udfff", "\x00\ud83d"]), odd_text).map("".join), odd_text
)

extreme_numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            0,
            -0.0,
            1e308,
            -1e308,
            5e-324,
            2**53 + 1,
            2**63 - 1,
            -(2**63),
            2**64 - 1,
            253402300799999,
            -62135596800000,
            10**18,
        ]
    ),
)

#: ``ts`` values: extreme epoch milliseconds, RFC 3339 at the edges of the calendar, and nonsense.
extreme_times = st.one_of(
    extreme_numbers,
    st.sampled_from(
        [
            "0001-01-01T00:00:00+08:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-08:00",
            "9999-12-31T23:59:59.999999+00:00",
            "1970-01-01T00:00:00",
            "2026-02-30T00:00:00Z",
            "",
            "Z",
            "now",
            "2026-13-01T00:00:00+00:00",
            "2026-01-01T00:00:00+24:00",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    odd_text,
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)

json_scalars = st.one_of(st.none(), st.booleans(), extreme_numbers, nasty_text)


def _json(children):
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(odd_text, children, max_size=4))


#: Any JSON document (strings may hold NUL and lone surrogates: those are sent as raw bytes where JSON
#: cannot carry them).
any_json = st.recursive(json_scalars, _json, max_leaves=20)


def nested(depth: int) -> bytes:
    return b'{"values":' * depth + b"1" + b"}" * depth


def json_bytes(value: object) -> bytes:
    """``value`` as JSON bytes; lone surrogates written as the escapes a hostile sender would send."""
    import json

    return json.dumps(value, ensure_ascii=True).encode()


def telemetry_shapes(keys: list[str]):
    """Telemetry documents that look almost right: real point keys with hostile values, times and wrappers."""
    value = st.one_of(
        json_scalars, st.lists(st.integers(), max_size=2), st.dictionaries(odd_text, st.integers(), max_size=2)
    )
    key = st.one_of(st.sampled_from(keys), nasty_text)
    values = st.dictionaries(key, value, max_size=4)
    item = st.one_of(
        values,
        st.fixed_dictionaries({"ts": extreme_times, "values": values}),
        st.fixed_dictionaries({"ts": extreme_times, "seq": json_scalars, "values": st.one_of(values, json_scalars)}),
    )
    return st.one_of(item, st.lists(item, max_size=4))


#: Whole hostile payloads: arbitrary bytes, arbitrary JSON, almost-right telemetry, deep nesting, huge numbers.
def hostile_payloads(keys: list[str]):
    return st.one_of(
        st.binary(max_size=200),
        any_json.map(json_bytes),
        telemetry_shapes(keys).map(json_bytes),
        st.integers(min_value=1, max_value=3000).map(nested),
        st.sampled_from(
            [
                b"NaN",
                b"Infinity",
                b'{"h2_ppm": NaN}',
                b'{"h2_ppm": 1e400}',
                b'{"h2_ppm": -Infinity}',
                b'{"h2_ppm": 123456789012345678901234567890}',
                b'{"ts": 1e400, "values": {"h2_ppm": 1}}',
                b'{"\\u0000": 1}',
                b'{"h2_ppm\\u0000": 1}',
                b'{"h2_ppm": "\\ud800"}',
                b"\xff\xfe{}",
                b'{"ts": "0001-01-01T00:00:00+08:00", "values": {"h2_ppm": 25}}',
                b"[]",
                b"{}",
                b'{"values": []}',
                b'{"values": {"h2_ppm": {"nested": true}}}',
                b"\x00" * 10,
            ]
        ),
    )


#: Topic levels that are not what the grammar expects.
odd_levels = st.one_of(
    odd_text.filter(
        lambda s: (
            "/" not in s
            and "+" not in s
            and "#" not in s
            and "\x00" not in s
            and s.encode("utf-8", "surrogatepass") == s.encode("utf-8", "ignore")
        )
    ),
    st.sampled_from(["", " ", "..", "ghost", "GAS-00", "gas-00 ", "气体"]),
)
