"""Each simulator incident raises the expected alarms and interlocks, end to end: the demo plant and its rule pack,
ingest, the alerts worker and the simulator as separate processes against real servers; the devices confirm the
commands and the physics responds; alarm events reach the broker.

Incidents play 3 times faster; the rules keep their real delays, so the speed is bounded by the slowest pair:
the wastewater analyzer reports every 30 s and the pH rule wants 60 s below the limit.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import orjson
import psycopg
import pytest
import yaml

from cli.plantfile import apply_full, load_full
from core import mqtt as mq
from core import topics
from simulator.runner import send_control
from tests.support import REPO_ROOT, spawn, stop_process, wait_for

pytestmark = pytest.mark.e2e

EXAMPLES = REPO_ROOT / "examples"
INCIDENTS = ("thermal_runaway", "electrolyte_leak", "rto_failure", "ph_excursion", "meter_stop", "sensor_flatline")


def _demo_copy(tmp: Path, site: str) -> Path:
    """The demo plant under a site code of its own (the broker may be shared), with a short flatline window."""
    plant = (EXAMPLES / "demo-plant.yaml").read_text(encoding="utf-8").replace("code: cz01", f"code: {site}", 1)
    (tmp / "demo-plant.yaml").write_text(plant, encoding="utf-8")
    safety = yaml.safe_load((EXAMPLES / "demo-safety.yaml").read_text(encoding="utf-8"))
    for rule in safety["rules"]:
        if rule["id"] == "health.flatline":
            rule["window_s"] = 20  # the stuck sensor is found in 20 s instead of 30 min
    (tmp / "demo-safety.yaml").write_text(yaml.safe_dump(safety, allow_unicode=True), encoding="utf-8")
    (tmp / "demo-hazwaste.yaml").write_text(
        (EXAMPLES / "demo-hazwaste.yaml").read_text(encoding="utf-8").replace("site: cz01", f"site: {site}"),
        encoding="utf-8",
    )
    (tmp / "demo-reports.yaml").write_text(
        (EXAMPLES / "demo-reports.yaml").read_text(encoding="utf-8").replace("site: cz01", f"site: {site}"),
        encoding="utf-8",
    )
    return tmp / "demo-plant.yaml"


class AlarmFeed:
    """What the alerts worker publishes on ehs/v1/{site}/alarms."""

    def __init__(self, broker_url: str, site: str) -> None:
        address = mq.BrokerAddress.parse(broker_url)
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.client = mq.new_client(address, protocol=mq.detect_protocol(address))
        self.client.on_message = lambda _c, _u, msg: self._add(orjson.loads(msg.payload))
        self.client.on_connect = lambda c, *_: c.subscribe(topics.alarms_topic(site), qos=1)
        mq.connect_blocking(self.client, address)

    def _add(self, event: dict) -> None:
        with self.lock:
            self.events.append(event)

    def rules(self) -> set[str]:
        with self.lock:
            return {e["rule"] for e in self.events}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _alarms(url: str) -> dict[tuple[str, str], dict]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT DISTINCT ON (rule, source) rule, source, state, condition_active, severity "
            "FROM alarm ORDER BY rule, source, id DESC"
        )
        return {(r[0], r[1]): {"state": r[2], "active": r[3], "severity": r[4]} for r in cur}


def _commands(url: str) -> dict[tuple[str, str], set[str]]:
    with psycopg.connect(url) as conn:
        out: dict[tuple[str, str], set[str]] = {}
        for device, action, status in conn.execute("SELECT device, action, status FROM interlock_command"):
            out.setdefault((device, action), set()).add(status)
        return out


def test_every_incident_raises_its_alarms_and_interlocks(
    database_url: str, broker_url: str, site: str, tmp_path: Path
) -> None:
    config = _demo_copy(tmp_path, site)
    with psycopg.connect(database_url) as conn:
        apply_full(conn=conn, full=load_full(config), source="e2e")
    env = {
        "EHS_DATABASE_URL": database_url,
        "EHS_MQTT_URL": broker_url,
        "EHS_DATA_DIR": str(tmp_path / "var"),
        "EHS_INGEST_CLIENT_ID": f"e2e-{uuid.uuid4().hex[:8]}",
        "EHS_ALERTS_CLIENT_ID": f"e2e-{uuid.uuid4().hex[:8]}",
        "EHS_INGEST_SESSION_EXPIRY_S": "60",
        "EHS_LOG_LEVEL": "INFO",
    }
    feed = AlarmFeed(broker_url, site)
    procs = [
        spawn("ingest", env, tmp_path / "ingest.log"),
        spawn("alerts", env, tmp_path / "alerts.log"),
        spawn("simulator", env, tmp_path / "simulator.log", "--config", str(config), "--speed", "3", "--dropout", "0"),
    ]
    s = f"{site}/"
    try:
        # the plant runs a little before anything goes wrong: the baselines of the deviation rules need 10 samples
        wait_for(lambda: _warm(database_url), timeout=90, message="a baseline of every VOC detector")
        for name in INCIDENTS:
            reply = send_control(broker_url, site, {"action": "start", "incident": name})
            assert reply["ok"], reply

        def raised(rule: str, source: str) -> bool:
            return (rule, s + source) in _alarms(database_url)

        def done(device: str, action: str) -> bool:
            return "done" in _commands(database_url).get((device, action), set())

        expected_alarms = [
            ("formation.cell_temp", "formation/form-cab-01/cell_temp_c"),  # thermal runaway, GB 38031 b)
            ("formation.cell_dtdt", "formation/form-cab-01/cell_temp_c"),  # c)
            ("formation.runaway", "formation/form-cab-01"),  # (a and c) or (b and c)
            ("formation.voc", "formation/form-gas-01/voc_ppm"),  # the venting solvent comes first
            ("injection.leak", "injection/inj-gas-01/voc_ppm"),  # electrolyte leak
            ("rto.chamber_low", "rto/rto-01/chamber_temp_c"),  # RTO failure
            ("wastewater.ph_low", "wastewater/ww-outlet-01/ph_ph"),  # pH excursion
            ("health.stale.meter", "formation/form-em-01"),  # a meter stops: silence is a finding
            ("health.flatline", "warehouse/wh-env-01/temp_c"),  # a sensor sticks
        ]
        for rule, source in expected_alarms:
            wait_for(lambda r=rule, src=source: raised(r, src), timeout=180, message=f"alarm {rule} at {source}")
        expected_commands = [
            ("form-cab-01", "charge.stop"),
            ("form-sprinkler-01", "sprinkler.on"),
            ("form-fan-01", "exhaust_fan.on"),
            ("inj-fan-01", "exhaust_fan.on"),
            ("inj-valve-01", "valve.close"),
            ("coat-line-01", "line.stop"),
            ("ww-valve-01", "valve.close"),
        ]
        for device, action in expected_commands:
            wait_for(lambda d=device, a=action: done(d, a), timeout=60, message=f"{device} to confirm {action}")
        alarms = _alarms(database_url)
        assert alarms[("formation.runaway", s + "formation/form-cab-01")]["state"] in (
            "active_unacked",
            "latched_unacked",
        )  # latching: it waits for a reset
        # the physics answered the interlocks: the fan and the closed valve end the leak's vapour
        wait_for(
            lambda: not _alarms(database_url)[("injection.leak", s + "injection/inj-gas-01/voc_ppm")]["active"],
            timeout=90,
            message="the leak's vapour to clear after fan and valve",
        )
        assert {"formation.runaway", "injection.leak"} <= wait_for(
            lambda: feed.rules() >= {"formation.runaway", "injection.leak"} and feed.rules(),
            timeout=30,
            message="alarm events on the broker",
        )
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM finding_dead_letter").fetchone()[0] == 0
            assert (
                conn.execute(
                    "SELECT count(*) FROM interlock_command WHERE status IN ('rejected', 'failed', 'timed_out')"
                ).fetchone()[0]
                == 0
            )
    finally:
        feed.close()
        for proc in reversed(procs):
            stop_process(proc)
    for name in ("ingest", "alerts", "simulator"):
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text(), name


def _warm(url: str) -> bool:
    """Every VOC detector has sent a dozen readings."""
    with psycopg.connect(url) as conn:
        least = conn.execute(
            "SELECT min(n) FROM (SELECT count(r.time) AS n FROM point p LEFT JOIN reading r ON "
            "r.point_id = p.id WHERE p.key = 'voc_ppm' GROUP BY p.id) AS counts"
        ).fetchone()[0]
        return least is not None and least >= 12
