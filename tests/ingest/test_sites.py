"""Scale-out that keeps detectors whole (issue 11, item 6): each ingest process owns its sites
(``EHS_INGEST_SITES``), subscribes to and evaluates only them, registers them with a lease, and a second process
claiming an owned site is refused; a shared subscription with rules is refused. Real processes where it matters."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from cli.plantfile import FullPlant, MainFile, SafetySections, apply_full
from core import topics
from core.plant import PlantConfig
from ingest import leases
from ingest.runner import IngestRunner
from ingest.settings import IngestSettings
from tests.alerts.helpers import SAFETY, plant_dict
from tests.support import Publisher, spawn, stop_process, unique_code, wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker]


def _two_sites(conn: psycopg.Connection, a: str, b: str) -> None:
    main = MainFile.model_validate({"sites": plant_dict(a)["sites"] + plant_dict(b)["sites"], **SAFETY})
    apply_full(
        conn=conn,
        full=FullPlant(
            PlantConfig.model_validate(main.model_dump(include=set(PlantConfig.model_fields))),
            SafetySections.model_validate(main.model_dump(include=set(SafetySections.model_fields), by_alias=True)),
        ),
        source="test",
    )


def test_sites_setting_reads_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHS_INGEST_SITES", " sz02, cz01 ,,cz01")
    assert IngestSettings().sites == ["cz01", "sz02"]
    monkeypatch.setenv("EHS_INGEST_SITES", "")
    assert IngestSettings().sites is None
    assert topics.subscriptions(["cz01"]) == (("ehs/v1/cz01/+/telemetry", 1), ("ehs/v1/cz01/+/status", 0))


def test_leases_refuse_overlap_and_free_after_expiry(database_url: str) -> None:
    ttl = timedelta(seconds=30)
    with psycopg.connect(database_url, autocommit=True) as conn:
        leases.claim(conn, owner="ingest-a", instance="h:1", sites=["s1"], ttl=ttl)
        with pytest.raises(
            leases.SiteLeaseRefused,
            match=r"cannot own sites s1, s2: already owned: site s1 by "
            r"ingest-a \(h:1",
        ):
            leases.claim(conn, owner="ingest-b", instance="h:2", sites=["s1", "s2"], ttl=ttl)
        leases.claim(conn, owner="ingest-b", instance="h:2", sites=["s2"], ttl=ttl)  # disjoint: fine
        with pytest.raises(leases.SiteLeaseRefused, match="cannot own every site"):
            leases.claim(conn, owner="ingest-c", instance="h:3", sites=None, ttl=ttl)
        leases.claim(conn, owner="ingest-a", instance="h:9", sites=["s1", "s3"], ttl=ttl)  # a restart: same owner
        assert leases.renew(conn, owner="ingest-a", instance="h:9", sites=["s1", "s3"], ttl=ttl)
        # a lease that was not renewed in time is free: a crashed owner's sites can be taken over
        leases.claim(conn, owner="ingest-b", instance="h:2", sites=["s2"], ttl=timedelta(milliseconds=1))
        time.sleep(0.01)
        leases.claim(conn, owner="ingest-d", instance="h:4", sites=["s2"], ttl=ttl)
        assert not leases.renew(conn, owner="ingest-b", instance="h:2", sites=["s2"], ttl=ttl)
        leases.release(conn, owner="ingest-a")
        rows = conn.execute("SELECT site, owner FROM ingest_site_lease ORDER BY site").fetchall()
    assert rows == [("s2", "ingest-d")]


def test_a_runner_owning_one_site_knows_and_subscribes_to_it_only(
    database_url: str, broker_url: str, tmp_path: Path
) -> None:
    a, b = unique_code("sa"), unique_code("sb")
    with psycopg.connect(database_url) as conn:
        _two_sites(conn, a, b)
    settings = IngestSettings(client_id=unique_code("own-"), sites=[a], heartbeat_s=0.5)
    runner = IngestRunner(
        database_url=database_url, mqtt_url=broker_url, spool_dir=tmp_path / "spool", settings=settings
    )
    assert {d.site for d in runner.index.devices.values()} == {a}  # the rules bind to site a only
    assert {t for t, _ in runner.subscriber.subscriptions} == {f"ehs/v1/{a}/+/telemetry", f"ehs/v1/{a}/+/status"}
    runner.start()
    try:
        wait_for(lambda: _counters(database_url).get("sites") == [a], message="the heartbeat naming its site")
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT site, owner FROM ingest_site_lease").fetchall() == [(a, settings.client_id)]
    finally:
        runner.stop()
    with psycopg.connect(database_url) as conn:  # a clean stop gives the site back
        assert conn.execute("SELECT count(*) FROM ingest_site_lease").fetchone()[0] == 0


def _counters(db: str) -> dict:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT counters FROM service_heartbeat WHERE service = 'ingest'").fetchone()
    return row[0] if row else {}


def _readings(db: str, site: str) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM reading r JOIN point p ON p.id = r.point_id JOIN device d ON "
            "d.id = p.device_id JOIN site s ON s.id = d.site_id WHERE s.code = %s",
            (site,),
        ).fetchone()[0]


def test_two_processes_own_two_sites_and_a_third_claim_is_refused(
    database_url: str, broker_url: str, tmp_path: Path
) -> None:
    a, b = unique_code("sa"), unique_code("sb")
    with psycopg.connect(database_url) as conn:
        _two_sites(conn, a, b)
    base = {
        "EHS_DATABASE_URL": database_url,
        "EHS_MQTT_URL": broker_url,
        "EHS_INGEST_HEARTBEAT_S": "0.5",
        "EHS_SECRET_KEY": "sites-test",
    }
    procs = [
        spawn(
            "ingest",
            {
                **base,
                "EHS_DATA_DIR": str(tmp_path / s),
                "EHS_INGEST_SITES": s,
                "EHS_INGEST_CLIENT_ID": unique_code(f"own-{s}-"),
            },
            tmp_path / f"{s}.log",
        )
        for s in (a, b)
    ]
    publisher = Publisher(broker_url)
    try:
        wait_for(lambda: _owners(database_url) == {a, b}, timeout=60, message="both sites owned")

        def stored() -> bool:
            for site in (a, b):
                publisher.publish(
                    topics.device_topic(site, "gas-01", topics.TELEMETRY), orjson.dumps({"h2_ppm": 1.0})
                ).wait_for_publish(10)
            return _readings(database_url, a) > 0 and _readings(database_url, b) > 0

        wait_for(stored, interval=0.5, timeout=60, message="readings of both sites, each by its owner")

        third_log = tmp_path / "third.log"
        third = spawn(
            "ingest",
            {
                **base,
                "EHS_DATA_DIR": str(tmp_path / "third"),
                "EHS_INGEST_SITES": f"{b},other",
                "EHS_INGEST_CLIENT_ID": unique_code("own-third-"),
            },
            third_log,
        )
        assert third.wait(60) != 0
        assert f"already owned: site {b} by own-{b}-" in third_log.read_text()
        assert all(p.poll() is None for p in procs)  # the owners run on
    finally:
        publisher.close()
        for p in procs:
            stop_process(p)


def _owners(db: str) -> set[str]:
    with psycopg.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT site FROM ingest_site_lease").fetchall()}


def test_a_shared_subscription_with_rules_is_refused(database_url: str, broker_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn:
        _two_sites(conn, unique_code("sa"), unique_code("sb"))
    log = tmp_path / "shared.log"
    proc = spawn(
        "ingest",
        {
            "EHS_DATABASE_URL": database_url,
            "EHS_MQTT_URL": broker_url,
            "EHS_DATA_DIR": str(tmp_path),
            "EHS_INGEST_SHARED_GROUP": "pool",
            "EHS_INGEST_CLIENT_ID": unique_code("shared-"),
        },
        log,
    )
    try:
        assert proc.wait(60) != 0
    finally:
        stop_process(proc)
    text = log.read_text()
    assert "EHS_INGEST_SHARED_GROUP is deprecated" in text
    assert "refused to start: EHS_INGEST_SHARED_GROUP=pool would spread each device's readings" in text
