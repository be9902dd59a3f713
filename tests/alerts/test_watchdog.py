"""The ``service.silent`` watch on heartbeats (issue 11, item 3): which groups of processes are judged silent or
stuck, for which sites the critical alarm is raised, and that it returns to normal when a fresh heartbeat is back.
(The same with real processes: tests/ingest/test_liveness.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from alerts.watchdog import SILENT_RULE, assess, watch
from tests.alerts.helpers import apply

pytestmark = pytest.mark.db


def _beat(conn: psycopg.Connection, instance: str, counters: dict, age_s: float = 0.0) -> None:
    conn.execute(
        "INSERT INTO service_heartbeat (service, instance, started_at, updated_at, counters) VALUES "
        "('ingest', %s, now(), now() - make_interval(secs => %s), %s) ON CONFLICT (service, instance) DO "
        "UPDATE SET updated_at = excluded.updated_at, counters = excluded.counters",
        (instance, age_s, orjson.dumps(counters).decode()),
    )


def _alarms(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT source, condition_active, severity, message FROM alarm WHERE rule = %s", (SILENT_RULE,)
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_silent_stuck_and_brokerless_groups_raise_and_clear(database_url: str, site: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            apply(conn, site)
        now = datetime.now(UTC)
        a, b = f"{site}a", f"{site}b"
        _beat(conn, "h:1", {"group": a, "sites": [a], "stuck": []})  # healthy
        _beat(conn, "h:2", {"group": b, "sites": [b], "stuck": []}, age_s=90)  # died 90 s ago
        _beat(conn, "h:3", {"stuck": ["stages"]})  # every site, stuck
        assert [(g.group, g.healthy) for g in assess(conn, service_name="ingest", stale_s=30)] == [
            ("*", False),
            (a, True),
            (b, False),
        ]
        watch(conn=conn, service_name="ingest", stale_s=30, now=now, watcher="test")
        alarms = _alarms(conn)
        assert set(alarms) == {f"{b}/ingest", "_service/ingest"}
        assert alarms[f"{b}/ingest"][:2] == (True, 4) and "h:2: no heartbeat for 90 s" in alarms[f"{b}/ingest"][2]
        assert "h:3: stuck: stages" in alarms["_service/ingest"][2]
        watch(conn=conn, service_name="ingest", stale_s=30, now=now, watcher="test")  # no second raise
        assert conn.execute("SELECT sum(activations) FROM alarm WHERE rule = %s", (SILENT_RULE,)).fetchone() == (2,)

        # b's restart under the same sites beats again; the all-sites process lost its broker instead
        _beat(conn, "h:4", {"group": b, "sites": [b], "stuck": []})
        _beat(conn, "h:3", {"stuck": [], "mqtt_disconnected_s": 45.0})
        watch(conn=conn, service_name="ingest", stale_s=30, now=now, watcher="test")
        alarms = _alarms(conn)
        assert alarms[f"{b}/ingest"][:2] == (False, 0)  # back to normal
        assert (
            alarms["_service/ingest"][0]
            and "no MQTT broker for 45 s" in assess(conn, service_name="ingest", stale_s=30)[0].reason
        )
        # the all-sites process is stopped and its sites are now owned by the healthy site processes
        conn.execute("DELETE FROM service_heartbeat WHERE instance IN ('h:2', 'h:3')")
        watch(conn=conn, service_name="ingest", stale_s=30, now=now, watcher="test")
        assert _alarms(conn)["_service/ingest"][:2] == (False, 0)


def test_an_old_hj212_relay_backlog_raises_a_system_alarm_per_site_and_clears(database_url: str, site: str) -> None:
    from alerts.watchdog import RELAY_RULE, watch_relay

    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            apply(conn, site)
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO hj212_relay_outbox (site, device, topic, payload, created_at) VALUES "
            "(%s, 'ww-1', 't', '', now() - interval '400 s'), (%s, 'ww-1', 't', '', now() - interval '10 s')",
            (site, f"{site}x"),
        )

        def alarms() -> dict:
            rows = conn.execute(
                "SELECT source, condition_active, severity, activations FROM alarm WHERE rule = %s", (RELAY_RULE,)
            ).fetchall()
            return {r[0]: r[1:] for r in rows}

        late = watch_relay(conn=conn, late_s=300, now=now, watcher="test")
        assert list(late) == [site] and late[site] >= 400
        assert alarms() == {f"{site}/hj212-relay": (True, 3, 1)}  # the young backlog of the other site: none
        watch_relay(conn=conn, late_s=300, now=now, watcher="test")
        assert alarms() == {f"{site}/hj212-relay": (True, 3, 1)}  # raised once
        conn.execute("UPDATE hj212_relay_outbox SET sent_at = now()")
        assert watch_relay(conn=conn, late_s=300, now=now, watcher="test") == {}
        assert alarms()[f"{site}/hj212-relay"][:2] == (False, 0)
