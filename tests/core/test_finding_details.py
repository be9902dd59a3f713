"""Finding.details is typed (issue 18, item 1) and keeps the JSON shape of spool files and dead letters."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from core.model import DETAIL_KEYS, Decision, Finding, FindingDetails, Severity, SubjectRef

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.sampled_from([*DETAIL_KEYS, "pollutant", "outfall", "state"]) | st.text(max_size=8)


def _finding(details: object) -> Finding:
    return Finding(
        rule="r",
        detector="d",
        subject=SubjectRef("s"),
        severity=Severity.HIGH,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        details=details,
    )  # type: ignore[arg-type]


@given(st.dictionaries(_KEYS, _JSON, max_size=8))
def test_any_mapping_reads_back_as_it_was_given(data: dict) -> None:
    details = _finding(data).details
    assert isinstance(details, FindingDetails)
    assert details.as_dict() == data and list(details) == list(data) and dict(details) == data
    assert FindingDetails.of(details.as_dict()) == details
    for key in DETAIL_KEYS:
        assert getattr(details, key) == data.get(key)
        assert (key in details) == (key in data)


def test_the_stage_decision_is_typed_and_absent_until_a_stage_decides() -> None:
    bare = _finding({"finding_id": "f1", "previous": 0, "level": "高", "pollutant": "cod"}).details
    assert bare.decision is None and bare.finding_id == "f1" and bare.extra == {"pollutant": "cod"}
    decided = bare.decided(
        Decision(({"plan": "s/a", "level": 2, "name": "二级", "name_en": None},), ({"id": "c1", "status": "pending"},))
    )
    assert decided.decision == Decision(
        ({"plan": "s/a", "level": 2, "name": "二级", "name_en": None},), ({"id": "c1", "status": "pending"},)
    )
    assert list(decided) == ["finding_id", "previous", "level", "pollutant", "plan", "commands"]
    assert _finding({"plan": []}).details.decision == Decision()  # decided: nothing started
    assert dataclasses.replace(_finding(bare), details=decided).details is decided
