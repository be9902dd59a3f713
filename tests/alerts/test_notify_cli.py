"""`ehs notify` from a terminal: add a channel from an environment variable, list it redacted, test it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import get_settings
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, SECRET, stand_ins

pytestmark = pytest.mark.db


def test_add_list_and_test_a_channel(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with stand_ins() as p:
        monkeypatch.setenv("EHS_DATABASE_URL", database_url)
        monkeypatch.setenv("EHS_SECRET_KEY", SECRET)
        monkeypatch.setenv("EHS_ALERTS_NOTIFY_ENDPOINTS", json.dumps({"dingtalk": p.base}))
        monkeypatch.setenv("DING_URL", f"dingtalk://{DING_SECRET}@{DING_TOKEN}/")
        monkeypatch.setenv("BAD_URL", "dingtalk://SECwrong00@unknowntoken/")
        get_settings.cache_clear()
        runner = CliRunner()
        try:
            added = runner.invoke(app, ["notify", "add", "ding", "dingtalk", "--url-env", "DING_URL"])
            assert added.exit_code == 0, added.output
            runner.invoke(app, ["notify", "add", "bad", "dingtalk", "--url-env", "BAD_URL"])
            listed = runner.invoke(app, ["notify", "channels"]).output
            assert "ding" in listed and "dingtalk://***" in listed
            assert DING_TOKEN not in listed + added.output and DING_SECRET not in listed + added.output
            ok = runner.invoke(app, ["notify", "test", "ding"])
            assert ok.exit_code == 0 and "ding: ok" in ok.output
            bad = runner.invoke(app, ["notify", "test", "bad"])
            assert bad.exit_code == 1 and "300001" in bad.output
        finally:
            get_settings.cache_clear()
    assert [m["body"]["text"]["content"].startswith("【测试】") for m in p.messages("dingtalk")] == [True]
