"""The stage model on a generated history with planted gaps (precision and recall printed), and on the ledger."""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from hazwaste import ledger
from hazwaste.dwell import Event, StageModel, _student_sf, generated_history, load_events, score
from tests.hazwaste.world import seed
from tests.support import unique_code

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_student_t_survival_matches_known_values() -> None:
    assert _student_sf(0.0, 5) == pytest.approx(0.5)
    assert _student_sf(2.015, 5) == pytest.approx(0.05, abs=5e-4)  # t table: 0.95 quantile, 5 df
    assert _student_sf(-2.015, 5) == pytest.approx(0.95, abs=5e-4)
    assert _student_sf(1.96, 1e6) == pytest.approx(0.025, abs=2e-4)


@pytest.mark.parametrize("seed_", [7, 11])
def test_planted_gaps_are_found_and_the_missing_step_named(seed_: int) -> None:
    events, truth = generated_history(3000, NOW, seed=seed_)
    model = StageModel().fit(events)
    found = model.detect(events, NOW)
    figures = score(found, truth)
    by_kind = {
        kind: score([a for a in found if a.kind == kind], {c: t for c, t in truth.items() if t[0] == kind})
        for kind in ("missing", "late")
    }
    sys.stdout.write(
        f"\ndwell model, seed {seed_}: {figures}; missing: {by_kind['missing']}; late: {by_kind['late']}\n"
    )
    assert figures["planted"] > 150
    assert figures["precision"] >= 0.9 and figures["recall"] >= 0.7
    assert by_kind["missing"]["recall"] >= 0.95 and figures["step_named_right"] >= 0.95


def test_a_type_with_little_history_borrows_from_the_pool() -> None:
    t0 = NOW - timedelta(days=400)
    events = [
        Event(i, "common", s, t0 + timedelta(days=i) + timedelta(hours=h * (1 + (i % 5) / 10)))
        for i in range(40)
        for s, h in (("generation", 0), ("storage_in", 5), ("storage_out", 24 * 30))
    ]
    events.append(Event(100, "rare", "generation", NOW - timedelta(days=3)))
    events.append(Event(100, "rare", "storage_in", NOW - timedelta(days=3) + timedelta(hours=5)))
    model = StageModel().fit(events)
    assert model.p_next("rare", "storage_in") == pytest.approx({"storage_out": 1.0})
    assert model.p_still("rare", "storage_in", 24 * 3) > 0.9  # 3 days in store: normal
    assert model.p_still("rare", "storage_in", 24 * 200) < 1e-3  # 200 days: far later
    assert math.isclose(sum(model.p_next("common", "generation").values()), 1.0)
    assert not model.detect(events, NOW)


@pytest.mark.db
def test_model_reads_the_ledger_and_flags_a_container_stuck_in_storage(conn: psycopg.Connection) -> None:
    w = seed(conn, unique_code("hw"))
    t0 = NOW - timedelta(days=300)
    for i in range(12):
        cid = ledger.create_container(
            conn=conn,
            site_id=w.site_id,
            code=f"C-{i}",
            waste_type_id=w.types["carbon"],
            container_type="bag",
            volume_l=100,
        )
        at = t0 + timedelta(days=i * 20)
        ledger.record(
            conn=conn, container_id=cid, stage="generation", at=at, quantity_kg=20, handler="a", recorded_by="t"
        )
        ledger.record(
            conn=conn,
            container_id=cid,
            stage="storage_in",
            at=at + timedelta(hours=3 + i % 4),
            handler="a",
            facility="WH-2",
            recorded_by="t",
        )
        if i:  # C-0 went into the store 300 days ago and never came out
            ledger.record(
                conn=conn,
                container_id=cid,
                stage="storage_out",
                at=at + timedelta(days=10 + i % 5),
                handler="a",
                recorded_by="t",
            )
    events = load_events(conn=conn, site_id=w.site_id)
    assert len(events) == 12 * 3 - 1
    found = StageModel(min_history=3).fit(events).detect(events, NOW)
    assert [(a.kind, a.stage, a.missing) for a in found] == [("late", "storage_in", ("storage_out",))]
