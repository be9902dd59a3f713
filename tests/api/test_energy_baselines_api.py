"""/api/v1/energy/baselines against the real database: fit, refusal with the Guideline 14 reason, re-baselining
record, bad bodies as 422 naming the field, and a property test of the body parser (never a 5xx)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api.conftest import SITE, World
from tests.fuzzing import budget

pytestmark = pytest.mark.db
URL = "/api/v1/energy/baselines"
SIGNS = (1, -1, -1, 1)


def _body(amplitude: float = 2.0, **over) -> dict:
    periods = [
        {
            "start": f"2025-{m:02d}-01T00:00:00+08:00",
            "energy": 100 + 5 * m + amplitude * SIGNS[(m - 1) % 4],
            "variables": {"production": m},
        }
        for m in range(1, 13)
    ]
    return {
        "site": SITE,
        "meter": "e-main",
        "granularity": "monthly",
        "reason": "2025 基线",
        "periods": periods,
        **over,
    }


def test_fit_store_and_rebaseline(world: World) -> None:
    h = world.headers("ehs_manager")
    first = world.client.post(URL, json=_body(), headers=h)
    assert first.status_code == 201, first.text
    model = first.json()["model"]
    assert model["coefficients"]["production"] == pytest.approx(5.0)
    assert model["intercept"] == pytest.approx(100.0)
    # residuals ±2 in 12 months, p = 2: CV(RMSE) = 100·sqrt(48/10)/ȳ, ȳ = 132.5
    assert model["cv_rmse_pct"] == pytest.approx(100 * math.sqrt(4.8) / 132.5)
    second = world.client.post(URL, json=_body(reason="新增产线"), headers=h)
    assert second.status_code == 201
    listed = world.client.get(URL, params={"site": SITE, "meter": "e-main"}, headers=world.headers("viewer")).json()
    assert [(i["id"], i["current"], i["reason"]) for i in listed["items"]] == [
        (second.json()["id"], True, "新增产线"),
        (first.json()["id"], False, "2025 基线"),
    ]
    assert listed["items"][1]["superseded_by"] == second.json()["id"]
    with world.db() as conn:
        actions = conn.execute(
            "SELECT action, actor FROM audit_entry WHERE target LIKE 'energy_baseline:%' ORDER BY seq"
        ).fetchall()
    assert [a for a, _ in actions] == ["energy.baseline", "energy.rebaseline"]


def test_a_fit_failing_guideline_14_is_refused_with_the_reason(world: World) -> None:
    answer = world.client.post(URL, json=_body(amplitude=30.0), headers=world.headers("admin"))
    assert answer.status_code == 422
    body = answer.json()
    assert body["errors"][0]["field"] == "periods"
    assert "CV(RMSE) 24.8 % above 15 % (ASHRAE Guideline 14, monthly)" in body["detail"]
    listed = world.client.get(URL, params={"site": SITE, "meter": "e-main"}, headers=world.headers("admin"))
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"meter": "nope"}, 404, "no meter 'nope'"),
        ({"area": "formation"}, 422, "exactly one of meter or area"),
        ({"reason": ""}, 422, "reason"),
        ({"granularity": "weekly"}, 422, "granularity"),
        ({"periods": [{"start": "2025-01-01T00:00:00+08:00", "energy": -1, "variables": {}}]}, 422, "energy"),
        ({"periods": [{"start": "2025-01-01T00:00:00", "energy": 1, "variables": {}}]}, 422, "start"),
        ({"periods": _body()["periods"][:11]}, 422, "11 periods; a monthly baseline needs at least 12"),
    ],
)
def test_bad_bodies_are_refused_naming_the_problem(world: World, change: dict, status: int, words: str) -> None:
    answer = world.client.post(URL, json=_body(**change), headers=world.headers("admin"))
    assert answer.status_code == status, answer.text
    assert words in answer.text


def test_mismatched_variables_name_the_period(world: World) -> None:
    body = _body()
    body["periods"][3]["variables"] = {"production": 4, "cdd": 1}
    answer = world.client.post(URL, json=body, headers=world.headers("admin"))
    assert answer.status_code == 422 and "periods[3]" in answer.text


def test_a_listing_needs_one_meter_or_area(world: World) -> None:
    answer = world.client.get(URL, params={"site": SITE}, headers=world.headers("admin"))
    assert answer.status_code == 422
    assert world.client.get(URL, params={"site": SITE, "area": "formation"}, headers=world.headers("admin")).json() == {
        "items": []
    }


period = st.fixed_dictionaries(
    {
        "start": st.sampled_from([f"2025-{m:02d}-01T00:00:00+08:00" for m in range(1, 13)] + ["2025-13-01T00:00:00Z"]),
        "energy": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6)),
        "variables": st.dictionaries(
            st.sampled_from(["production", "cdd", "Bad-Name", "working_days"]),
            st.one_of(st.floats(-1e6, 1e6), st.just(0)),
            max_size=3,
        ),
    }
)


@budget(40)
@given(periods=st.lists(period, max_size=14), granularity=st.sampled_from(["monthly", "daily", "hourly", "x"]))
def test_body_parser_never_fails_with_a_server_error(world: World, periods, granularity) -> None:
    body = {"site": SITE, "meter": "e-main", "granularity": granularity, "reason": "fuzz", "periods": periods}
    try:
        answer = world.client.post(URL, json=body, headers=world.headers("admin"))
    except ValueError:  # NaN/Infinity cannot even be sent as JSON
        return
    assert answer.status_code in (201, 422), answer.text
    if answer.status_code == 422:
        assert answer.json()["detail"]
