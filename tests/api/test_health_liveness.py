"""``/readyz`` and ``/api/v1/system/health`` say which part of a service is stuck (issue 11, item 3), from the
``stuck`` list and ``liveness`` report a service writes in its heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from tests.api.conftest import World


def _beat(world: World, service: str, instance: str, counters: dict, age_s: float = 0.0) -> None:
    with world.db() as conn:
        conn.execute(
            "INSERT INTO service_heartbeat (service, instance, started_at, updated_at, counters) VALUES "
            "(%s, %s, %s, now() - make_interval(secs => %s), %s)",
            (service, instance, datetime.now(UTC), age_s, orjson.dumps(counters).decode()),
        )


def test_health_names_the_stuck_part(world: World) -> None:
    _beat(
        world,
        "ingest",
        "h:1",
        {
            "stuck": ["record"],
            "liveness": {
                "stages": {"state": "ok", "silent_s": 0.1, "idle_s": 0.1},
                "record": {"state": "stuck", "silent_s": 75.0, "idle_s": 75.0},
            },
        },
    )
    _beat(
        world, "alerts", "h:2", {"stuck": [], "liveness": {"loop": {"state": "idle", "silent_s": 0.2, "idle_s": 90.0}}}
    )
    _beat(world, "alerts", "h:3", {"sent": 1}, age_s=120.0)  # an older version: no liveness report
    ready = world.client.get("/readyz").json()["services"]
    assert {(s["service"], s["instance"]): (s["stale"], s["stuck"]) for s in ready} == {
        ("ingest", "h:1"): (False, ["record"]),
        ("alerts", "h:2"): (False, []),
        ("alerts", "h:3"): (True, []),
    }
    health = world.client.get("/api/v1/system/health", headers=world.headers("viewer"))
    assert health.status_code == 200
    services = {s["instance"]: s for s in health.json()["services"]}
    assert services["h:1"]["stuck"] == ["record"]
    assert services["h:1"]["counters"]["liveness"]["record"]["state"] == "stuck"
    assert services["h:2"]["stuck"] == [] and services["h:3"]["stale"]
