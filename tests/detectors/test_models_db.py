"""Training from history, audited mode changes, and streaming scoring in shadow and enabled mode (real DB)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core.audit import verify
from core.model import Finding, Severity
from detectors import service
from detectors.artifacts import ArtifactStore
from detectors.scoring import ScoringStage
from detectors.training import TrainRequest, train_area

pytestmark = pytest.mark.db

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BASE = {"h2_ppm": 50.0, "co_ppm": 10.0, "voc_ppm": 100.0}
SWING = {"h2_ppm": 5.0, "co_ppm": 2.0, "voc_ppm": 10.0}


def _value(key: str, i: int, device: int) -> float:
    """Correlated healthy signals: every point follows the same slow cycle, with a little noise."""
    cycle = math.sin(2 * math.pi * i / 90)
    wobble = 0.02 * math.sin(7.3 * i + device + len(key))
    return BASE[key] + device + SWING[key] * (cycle + wobble)


def _rows(
    points: dict[tuple[int, str], int],
    start: int,
    stop: int,
    spike: dict[tuple[int, str], float] | None = None,
    t0: datetime = T0,
) -> list[tuple[datetime, int, float, int]]:
    """Readings every 10 s for steps [start, stop); ``spike`` adds to given (device, key) points."""
    rows = []
    for i in range(start, stop):
        ts = t0 + timedelta(seconds=10 * i)
        for (device, key), pid in points.items():
            rows.append((ts, pid, _value(key, i, device) + (spike or {}).get((device, key), 0.0), 0))
    return rows


def _point_ids(conn: psycopg.Connection, site: str) -> dict[tuple[int, str], int]:
    found = service.area_points(conn=conn, site=site, area="formation")
    return {(int(p.device.split("-")[1]), p.key): p.point_id for p in found}


def _insert(conn: psycopg.Connection, rows) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, %s)", rows)


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def trained(plant_db: str, site: str, store: ArtifactStore) -> tuple[str, int, dict[tuple[int, str], int]]:
    """Two hours of healthy history in the database and a model trained on it (committed)."""
    with psycopg.connect(plant_db) as conn:
        points = _point_ids(conn, site)
        _insert(conn, _rows(points, 0, 720))
        conn.commit()
        request = TrainRequest(site=site, area="formation", start=T0, end=T0 + timedelta(hours=2), margin=3.0)
        result = train_area(conn=conn, store=store, request=request, actor="test:trainer")
        conn.commit()
    return plant_db, result.model_id, points


def test_training_registers_a_shadow_model_with_its_envelope(trained, site, store):
    url, model_id, points = trained
    with psycopg.connect(url) as conn:
        model = service.get_model(conn=conn, model_id=model_id)
        envelope = store.envelope(model.artifact)
        assert model.mode == service.SHADOW and model.site == site and model.area == "formation"
        assert model.n_rows == envelope.n_rows == 120  # two hours on a one-minute grid
        assert sorted(model.point_ids) == sorted(points.values())
        assert model.feature_spec["points"][0] == "gas-00.co_ppm" and model.feature_spec["freq"] == "1min"
        assert envelope.data_hash == model.data_hash and envelope.features == model.feature_spec["points"]
        assert envelope.window_start == T0.isoformat() and envelope.libraries["scikit-learn"] != "absent"
        assert [e["action"] for e in service.model_events(conn=conn, model_id=model_id)] == ["register"]
        entries, problems = verify(conn)
        assert entries == 1 and problems == []


def test_training_without_readings_is_refused(plant_db, site, store):
    with psycopg.connect(plant_db) as conn:
        request = TrainRequest(site=site, area="formation", start=T0, end=T0 + timedelta(hours=1))
        with pytest.raises(ValueError, match="no readings"):
            train_area(conn=conn, store=store, request=request, actor="test")


def _second_model(url: str, site: str, store: ArtifactStore) -> int:
    with psycopg.connect(url) as conn:
        request = TrainRequest(site=site, area="formation", start=T0, end=T0 + timedelta(hours=1))
        model_id = train_area(conn=conn, store=store, request=request, actor="test:trainer").model_id
        conn.commit()
    return model_id


def test_promotion_and_rollback_are_audited_and_keep_one_enabled_model(trained, site, store):
    url, first, _ = trained
    second = _second_model(url, site, store)
    with psycopg.connect(url) as conn:
        assert service.promote(conn=conn, model_id=first, actor="alice", reason="reviewed").mode == "enabled"
        service.promote(conn=conn, model_id=second, actor="alice", reason="newer data")
        modes = {m.id: m.mode for m in service.list_models(conn=conn, site=site)}
        assert modes == {first: "shadow", second: "enabled"}
        back = service.rollback(conn=conn, site=site, area="formation", actor="bob", reason="too many alarms")
        assert back is not None and back.id == first and back.mode == "enabled"
        assert service.get_model(conn=conn, model_id=second).mode == "shadow"
        with pytest.raises(service.ModelStateError):
            service.promote(conn=conn, model_id=first, actor="bob", reason="twice")
        service.retire(conn=conn, model_id=second, actor="bob", reason="superseded")
        conn.commit()
        actions = [(e["actor"], e["action"], e["to_mode"]) for e in service.model_events(conn=conn, model_id=first)]
        assert actions == [
            ("test:trainer", "register", "shadow"),
            ("alice", "promote", "enabled"),
            ("alice", "demote", "shadow"),
            ("bob", "rollback", "enabled"),
        ]
        audited = conn.execute("SELECT actor, action, target FROM audit_entry ORDER BY seq").fetchall()
        assert ("bob", "detector_model.rollback", f"detector_model/{first}") in audited
        assert ("bob", "detector_model.retire", f"detector_model/{second}") in audited
        entries, problems = verify(conn)
        assert entries == len(audited) == 8 and problems == []


def test_the_database_allows_one_enabled_model_per_area(trained, site, store):
    url, first, _ = trained
    second = _second_model(url, site, store)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE detector_model SET mode = 'enabled' WHERE id = %s", (first,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE detector_model SET mode = 'enabled' WHERE id = %s", (second,))


@dataclass
class _Decoded:
    rows: list[tuple[datetime, int, float | None, int]]


@dataclass
class _Batch:
    id: str
    decoded: _Decoded
    findings: list[Any] = field(default_factory=list)


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _stream(stage: ScoringStage, clock: _Clock, rows, name: str) -> _Batch:
    """Feed rows in 10-s batches, as ingest would, advancing the clock with the data."""
    findings: list[Any] = []
    by_time: dict[datetime, list] = {}
    for row in rows:
        by_time.setdefault(row[0], []).append(row)
    for ts in sorted(by_time):
        clock.now = ts + timedelta(seconds=1)
        batch = _Batch(f"{name}-{ts:%H%M%S}", _Decoded(by_time[ts]))
        stage.evaluate(batch)
        findings += batch.findings
    return _Batch(name, _Decoded([]), findings)


def test_shadow_model_records_scores_and_findings_but_never_raises_an_alarm(trained, store):
    url, model_id, points = trained
    clock = _Clock()
    stage = ScoringStage(store=store, now=clock, reload_s=0.0)
    with psycopg.connect(url) as conn:
        stage.load(conn=conn)
        assert stage.bindings[model_id].shadow
        healthy = _stream(stage, clock, _rows(points, 720, 780), "healthy")
        spiked = _stream(stage, clock, _rows(points, 780, 800, spike={(1, "h2_ppm"): 400.0}), "spike")
        assert healthy.findings == [] and spiked.findings == []  # shadow: nothing for the alarm engine
        stage.record(conn)
        conn.commit()
        scores = conn.execute(
            "SELECT count(*), bool_and(shadow), max(score) FROM detector_score WHERE model_id = %s", (model_id,)
        ).fetchone()
        assert scores[0] >= 12 and scores[1] is True and scores[2] >= 1.0
        healthy_max = conn.execute(
            "SELECT max(score) FROM detector_score WHERE model_id = %s AND time <= %s",
            (model_id, T0 + timedelta(seconds=10 * 780)),
        ).fetchone()[0]
        assert healthy_max < 1.0
        finding = conn.execute(
            "SELECT severity, shadow, contributors FROM detector_finding WHERE model_id = %s ORDER BY id LIMIT 1",
            (model_id,),
        ).fetchone()
        assert finding[0] >= int(Severity.MEDIUM) and finding[1] is True
        assert finding[2][0]["point"] == "gas-01.h2_ppm" and finding[2][0]["point_id"] == points[(1, "h2_ppm")]


def test_promoted_model_raises_findings_that_name_the_contributing_points(trained, store):
    url, model_id, points = trained
    clock = _Clock()
    stage = ScoringStage(store=store, now=clock, reload_s=0.0)
    with psycopg.connect(url) as conn:
        stage.load(conn=conn)
        _stream(stage, clock, _rows(points, 720, 760), "warm")
        service.promote(conn=conn, model_id=model_id, actor="alice", reason="shadow run reviewed")
        conn.commit()
        stage.record(conn)  # the record thread notices the mode change and reloads
        assert not stage.bindings[model_id].shadow
        spiked = _stream(stage, clock, _rows(points, 760, 780, spike={(0, "voc_ppm"): -80.0}), "spike")
        raised = [f for f in spiked.findings if f.severity > Severity.NORMAL]
        assert raised and isinstance(raised[0], Finding)
        first = raised[0]
        assert first.rule == f"detector_model:{model_id}" and first.subject.area == "formation"
        assert first.details["contributors"][0]["point"] == "gas-00.voc_ppm"
        assert "gas-00.voc_ppm" in first.message and first.caused_by.startswith("spike-")
        cleared = _stream(stage, clock, _rows(points, 780, 800), "after")
        assert [f.severity for f in cleared.findings][-1] == Severity.NORMAL


@pytest.mark.broker
def test_ingest_scores_published_readings_without_alarming_in_shadow(plant_db, site, store, broker_url, tmp_path):
    import orjson

    from ingest.runner import IngestRunner
    from ingest.settings import IngestSettings
    from tests.support import Publisher, unique_code, wait_for

    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    with psycopg.connect(plant_db) as conn:
        points = _point_ids(conn, site)
        _insert(conn, _rows(points, 0, 720, t0=t0))
        conn.commit()
        request = TrainRequest(site=site, area="formation", start=t0, end=t0 + timedelta(hours=2))
        model_id = train_area(conn=conn, store=store, request=request, actor="test").model_id
        conn.commit()
        stage = ScoringStage(store=store)
        stage.load(conn=conn)
    handed_to_alarms: list[Any] = []

    def evaluate(batch) -> None:
        stage.evaluate(batch)
        handed_to_alarms.extend(batch.findings)

    settings = IngestSettings(client_id=unique_code("ingest-"), session_expiry_s=300, heartbeat_s=0.5)
    runner = IngestRunner(
        database_url=plant_db,
        mqtt_url=broker_url,
        spool_dir=tmp_path / "spool",
        settings=settings,
        evaluate=evaluate,
        record_extra=stage.record,
    )
    runner.start()
    publisher = Publisher(broker_url)
    try:
        wait_for(runner.subscriber.connected.is_set, message="ingest to connect")
        # Each device publishes a minute of 10-s readings per message, the two devices interleaved in time.
        device_of = {pid: key for key, pid in points.items()}
        minutes: dict[tuple[datetime, int], list[dict[str, Any]]] = {}
        for ts, pid, value, _ in _rows(points, 720, 800, spike={(1, "h2_ppm"): 400.0}, t0=t0):
            device, key = device_of[pid]
            item = {"ts": int(ts.timestamp() * 1000), "values": {key: value}}
            minutes.setdefault((ts.replace(second=0), device), []).append(item)
        for (_, device), items in sorted(minutes.items()):
            publisher.publish(f"ehs/v1/{site}/gas-{device:02d}/telemetry", orjson.dumps(items)).wait_for_publish(10)

        def shadow_finding():
            with psycopg.connect(plant_db) as conn:
                return conn.execute(
                    "SELECT shadow, contributors FROM detector_finding WHERE model_id = %s", (model_id,)
                ).fetchone()

        found = wait_for(shadow_finding, timeout=60, message="a shadow finding recorded by ingest")
        assert found[0] is True and found[1][0]["point"] == "gas-01.h2_ppm"

        def scores_recorded():
            # Scores and findings are written by the record thread in separate passes: the finding can land first.
            with psycopg.connect(plant_db) as conn:
                count = conn.execute("SELECT count(*) FROM detector_score WHERE model_id = %s", (model_id,)).fetchone()
            return count[0] if count[0] >= 10 else None

        assert wait_for(scores_recorded, timeout=60, message="at least ten shadow scores recorded") >= 10
        assert handed_to_alarms == []
    finally:
        publisher.close()
        runner.stop()


def test_cli_trains_lists_promotes_and_rolls_back(plant_db, site, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.detectors_cmd import app
    from core.settings import get_settings

    with psycopg.connect(plant_db) as conn:
        _insert(conn, _rows(_point_ids(conn, site), 0, 720))
    monkeypatch.setenv("EHS_DATABASE_URL", plant_db)
    monkeypatch.setenv("EHS_DETECTORS_ARTIFACT_DIR", str(tmp_path / "store"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        trained = []
        for end in ("2026-03-01T10:00:00", "2026-03-01T09:00:00"):
            result = runner.invoke(
                app,
                [
                    "train",
                    "--site",
                    site,
                    "--area",
                    "formation",
                    "--from",
                    "2026-03-01T08:00:00",
                    "--to",
                    end,
                    "--window",
                    "5",
                ],
            )
            assert result.exit_code == 0, result.output
            summary = json.loads(result.output.strip().splitlines()[-1])
            assert summary["mode"] == "shadow" and summary["features"][0] == "gas-00.co_ppm__mean5"
            trained.append(summary["model_id"])
        first, second = trained
        for argv in (["promote", str(first), "--reason", "ok"], ["promote", str(second), "--reason", "newer"]):
            assert runner.invoke(app, argv).exit_code == 0
        listed = runner.invoke(app, ["models", "--site", site]).output
        assert f"{second}  {site}/formation" in listed and "enabled" in listed
        result = runner.invoke(app, ["rollback", "--site", site, "--area", "formation", "--reason", "noisy"])
        assert result.exit_code == 0 and f"model {first} of {site}/formation: enabled" in result.output
        refused = runner.invoke(app, ["retire", "999999", "--reason", "none"])
        assert refused.exit_code == 1 and "no detector model 999999" in refused.output
        with psycopg.connect(plant_db) as conn:
            actors = {row[0] for row in conn.execute("SELECT actor FROM detector_model_event")}
        assert len(actors) == 1 and actors.pop().startswith("cli:")
    finally:
        get_settings.cache_clear()
