"""`ehs alarms` from a terminal: list, show, acknowledge, refuse clearly, drill, KPIs, device keys."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from alerts import service
from cli.main import app
from core.commands import device_key
from core.model import Severity
from core.settings import get_settings
from tests.alerts.helpers import T0, apply, finding

pytestmark = pytest.mark.db


@pytest.fixture
def ehs(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EHS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


def test_list_show_ack_and_refusals(ehs, database_url: str, site: str) -> None:
    with psycopg.connect(database_url) as conn:
        config = apply(conn, site)
        service.apply_findings(
            conn=conn, findings=[finding(site, "gas.h2", Severity.HIGH, value=900)], now=T0, config=config
        )
        alarm_id = conn.execute("SELECT id FROM alarm").fetchone()[0]
    listed = ehs("alarms", "list")
    assert listed.exit_code == 0 and "UNACK" in listed.output and f"{site}/formation/gas-01/h2_ppm" in listed.output
    shown = ehs("alarms", "show", str(alarm_id))
    assert "raise" in shown.output and "exhaust_fan.on" in shown.output
    assert ehs("alarms", "ack", str(alarm_id), "--user", "zhang.wei").exit_code == 0
    again = ehs("alarms", "ack", str(alarm_id), "--user", "zhang.wei")
    assert again.exit_code == 1 and "refused: cannot ack" in again.output
    viewer = ehs("alarms", "reset", str(alarm_id), "--user", "screen", "--role", "viewer")
    assert viewer.exit_code == 1 and "may not reset" in viewer.output
    assert "annunciated" in ehs("alarms", "kpi", "--hours", "1").output


def test_drill_and_device_key(ehs, database_url: str, site: str) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site)
    out = ehs("alarms", "drill", "formation", "1", "--site", site, "--user", "li.na", "--reason", "drill")
    assert out.exit_code == 0, out.output
    assert "spr-sim" in out.output and "skipped drill: a real device" in out.output
    key = ehs("alarms", "key", site, "fan-01").output.strip()
    assert key == device_key(get_settings().secret_key.get_secret_value(), site, "fan-01").hex()
