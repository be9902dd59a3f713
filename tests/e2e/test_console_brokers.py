"""The console reaches a running simulator on both embedded brokers (a bare machine has no Mosquitto and gets amqtt).

amqtt 0.12 hands a new subscriber retained messages of other topics (the devices' plain-text ``online``/``offline``
statuses); the console's reply listener once choked on them, paho's network thread died, and
``ehs simulate incident`` ended in a traceback although the simulator had started the incident.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.embedded import start_broker
from simulator.runner import SimulatorRunner
from tests.support import REPO_ROOT, small_plant, unique_code

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def _console(url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHS_")}
    env.update(EHS_MQTT_URL=url, EHS_DATA_DIR=str(tmp / "var"))
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90
    )


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_simulate_commands_get_their_reply(kind: str, tmp_path: Path) -> None:
    if kind == "mosquitto" and not any(Path(p).exists() for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")):
        pytest.fail("this machine has no mosquitto binary (CI machines have one)")
    broker = start_broker(tmp_path / "broker", prefer=kind)
    assert broker.kind == kind
    site = unique_code("c")
    runner = SimulatorRunner(small_plant(site), broker.url, rate_scale=5.0, outage_per_hour=0.0, dropout=0.0)
    try:
        runner.start()  # every device announces a retained `online` before the console subscribes
        started = _console(
            broker.url, tmp_path, "simulate", "incident", "electrolyte_leak", "--area", "formation", "--site", site
        )
        assert started.returncode == 0, started.stderr
        assert "started in area formation" in started.stdout
        cleared = _console(broker.url, tmp_path, "simulate", "clear", "--site", site)
        assert cleared.returncode == 0, cleared.stderr
        assert "electrolyte_leak" in cleared.stdout
    finally:
        runner.stop()
    # nobody answers now: one clear line, no traceback
    missing = _console(broker.url, tmp_path, "simulate", "clear", "--site", site)
    broker.stop()
    assert missing.returncode == 1
    assert "no simulator answered" in missing.stderr and "is `ehs up --demo` running?" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
