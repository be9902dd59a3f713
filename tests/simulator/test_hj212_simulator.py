"""The HJ 212 analyzer simulator through the real listener into the real PostgreSQL, with an incident."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from core.plant import apply_plant
from ingest.hj212.listener import Hj212Listener
from ingest.hj212.settings import Hj212Settings
from simulator.hj212 import Factor, loggers_of, value_of
from tests.ingest.hj212_support import hj212_plant

pytestmark = pytest.mark.db


def test_incidents_move_the_values_the_plant_would() -> None:
    import random

    nmhc, ph, cod = Factor("a24088", 10.0, 0, 1000), Factor("w01001", 7.2, 0, 14), Factor("w01018", 50.0, 0, 2000)
    rnd = random.Random(1)
    assert value_of(nmhc, 0, rnd, "adsorber_breakthrough", 600)[0] > 25  # 3x nominal after the ramp
    assert value_of(nmhc, 0, rnd, "rto_trip", 600)[0] > 70
    assert value_of(ph, 0, rnd, "ph_excursion", 600)[0] == pytest.approx(4.5, abs=0.01)
    assert value_of(cod, 0, rnd, "analyzer_calibration", 0)[1] == "C"
    assert value_of(cod, 0, rnd, None, 0)[1] == "N" and 40 < value_of(cod, 0, rnd, None, 0)[0] < 60


def test_simulated_loggers_reach_the_database_through_the_listener(database_url: str, site: str) -> None:
    plant = hj212_plant(site, loggers=3)
    with psycopg.connect(database_url) as conn:
        apply_plant(conn=conn, plant=plant, source="test")
    for device in plant.sites[0].areas[0].devices:
        device.interval_s = 1.0  # data times are whole seconds: one frame a second at most

    async def scenario() -> list:
        listener = Hj212Listener(database_url=database_url, settings=Hj212Settings(host="127.0.0.1", port=0))
        await listener.start()
        loggers = loggers_of(plant, host="127.0.0.1", port=listener.port, speed=1.0)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(logger.run(stop)) for logger in loggers]
        await asyncio.sleep(0.5)
        for logger in loggers:
            logger.start_incident("analyzer_calibration")
        for _ in range(400):
            if all(logger.answered >= 8 for logger in loggers):  # 2011 and 2021 each cycle
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        await listener.stop()
        return loggers

    loggers = asyncio.run(scenario())
    assert all(logger.answered >= 8 for logger in loggers)
    with psycopg.connect(database_url) as conn:
        by_key = dict(
            conn.execute(
                "SELECT p.key, count(*) FROM reading r JOIN point p ON p.id = r.point_id GROUP BY p.key"
            ).fetchall()
        )
        flags = conn.execute("SELECT DISTINCT flag FROM reading_flag").fetchall()
        dead = conn.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    assert by_key["cod_mg_l"] >= 12 and by_key["ph_ph"] >= 12 and by_key["flow_l_s"] >= 12
    assert by_key["pump_rs_code"] >= 12  # the pump's run state (SB1-RS, 2021) with each real-time frame
    assert flags == [("C",)]  # calibration flagged, flow (w00000) not
    assert dead == 0
