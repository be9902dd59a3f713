"""Readings over the API: raw pages, buckets with gaps as gaps, latest values, and the audited CSV export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.db

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _store(world: World, point_id: int, minutes: list[int]) -> None:
    with world.db() as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO reading (time, point_id, value) VALUES (%s, %s, %s)",
            [(T0 + timedelta(minutes=m, seconds=s), point_id, float(m)) for m in minutes for s in (0, 30)],
        )


def test_raw_readings_come_in_pages(world: World) -> None:
    pid = world.ids["point"]
    _store(world, pid, [0, 1, 2])
    got, after = [], None
    while True:
        params = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=3)).isoformat(), "limit": 4}
        reply = world.client.get(
            f"/api/v1/points/{pid}/readings",
            headers=world.headers("viewer"),
            params={**params, **({"after": after} if after else {})},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        got += body["readings"]
        after = body["next"]
        if after is None:
            break
    assert len(got) == 6 and got[0]["time"] == "2026-03-01T08:00:00Z" and body["unit"] == "ppm"


def test_buckets_show_gaps_as_gaps(world: World) -> None:
    pid = world.ids["point"]
    _store(world, pid, [0, 1, 4])
    reply = world.client.get(
        f"/api/v1/points/{pid}/readings",
        headers=world.headers("viewer"),
        params={"start": T0.isoformat(), "end": (T0 + timedelta(minutes=5)).isoformat(), "bucket": "1m"},
    ).json()
    counts = [(b["count"], b["avg"]) for b in reply["buckets"]]
    assert counts == [(2, 0.0), (2, 1.0), (0, None), (0, None), (2, 4.0)]


def test_the_default_window_gets_its_first_and_last_buckets_whole(world: World) -> None:
    """The default window (an hour before now) never starts on a minute: its first bucket is not a gap."""
    pid = world.ids["point"]
    _store(world, pid, [0, 1, 2])
    reply = world.client.get(
        f"/api/v1/points/{pid}/readings",
        headers=world.headers("viewer"),
        params={
            "end": (T0 + timedelta(minutes=2, seconds=15)).isoformat(),
            "bucket": "1m",
            "start": (T0 + timedelta(seconds=15)).isoformat(),
        },
    ).json()
    assert [(b["time"], b["count"]) for b in reply["buckets"]] == [
        ("2026-03-01T08:00:00Z", 2),
        ("2026-03-01T08:01:00Z", 2),
        ("2026-03-01T08:02:00Z", 2),
    ]


def test_bad_windows_are_clear_errors(world: World) -> None:
    url = f"/api/v1/points/{world.ids['point']}/readings"
    viewer = world.headers("viewer")
    naive = world.client.get(url, headers=viewer, params={"start": "2026-03-01T08:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.start"
    backwards = world.client.get(
        url, headers=viewer, params={"start": T0.isoformat(), "end": (T0 - timedelta(hours=1)).isoformat()}
    )
    assert backwards.status_code == 422 and "before end" in backwards.json()["detail"]
    too_many = world.client.get(url, headers=viewer, params={"start": "2020-01-01T00:00:00Z", "bucket": "1m"})
    assert too_many.status_code == 422 and "coarser bucket" in too_many.json()["detail"]


def test_latest_respects_scope_and_filters(world: World) -> None:
    rows = world.client.get("/api/v1/latest", headers=world.headers("viewer")).json()
    assert {r["site"] for r in rows} == {"s1"}
    assert all(r["time"].endswith("Z") or "+" in r["time"] for r in rows)
    one = world.client.get(
        "/api/v1/latest",
        headers=world.headers("viewer"),
        params={"point_id": [world.ids["point"], world.ids["other_point"]]},
    ).json()
    assert [r["point_id"] for r in one] == [world.ids["point"]]
    assert world.client.get("/api/v1/latest", headers=world.headers("viewer"), params={"site": "s2"}).status_code == 403


def test_export_is_csv_and_audited(world: World) -> None:
    pid = world.ids["ww_point"]
    reply = world.client.get("/api/v1/exports/readings", headers=world.headers("regulator"), params={"point_id": pid})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    lines = reply.text.strip().splitlines()
    assert lines[0] == "time,point_id,site,device,key,unit,value,quality" and len(lines) == 6
    with world.db() as conn:
        actor, detail = conn.execute(
            "SELECT actor, detail FROM audit_entry WHERE action = 'export.readings'"
        ).fetchone()
    assert actor == "user:regulator" and detail["points"] == [pid] and detail["rows"] == 5


def test_latest_follows_committed_readings_and_falls_back_to_the_database(world: World) -> None:
    from ingest.writer import announce
    from tests.support import wait_for

    pid, viewer = world.ids["point"], world.headers("viewer")
    with world.db() as conn, conn.transaction():
        row = (datetime.now(UTC), pid, 4321.0, 0)
        conn.execute("INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, %s)", row)
        announce(conn, "b1", [row])

    def value() -> float | None:
        reply = world.client.get("/api/v1/latest", headers=viewer, params={"point_id": pid})
        assert reply.headers["x-latest-source"] == "live"
        return reply.json()[0]["value"] == 4321.0

    wait_for(value, message="the committed reading in /api/v1/latest")
    world.client.app.state.hub.cache_ready = False  # as while the live feed reconnects
    reply = world.client.get("/api/v1/latest", headers=viewer, params={"point_id": pid})
    assert reply.headers["x-latest-source"] == "database" and reply.json()[0]["value"] == 4321.0
