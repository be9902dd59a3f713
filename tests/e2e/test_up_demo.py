"""`ehs up --demo` on a clean folder, with nothing configured: embedded database and broker, readings appear
through the API, an incident started from a second command reaches the database, Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.support import REPO_ROOT, wait_for

pytestmark = pytest.mark.e2e


def _get(url: str, token: str | None = None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - local test server
        return json.loads(resp.read())


def _sign_in(api: str, text: str) -> str:
    """Sign in as the demo administrator with the one-time password ``ehs up --demo`` printed."""
    match = re.search(r"sign in  : user (\S+), password (\S+) ", text)
    assert match, text
    form = urllib.parse.urlencode({"username": match[1], "password": match[2]}).encode()
    with urllib.request.urlopen(f"{api}/api/v1/auth/token", data=form, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read())["access_token"]


def test_up_demo_on_a_clean_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHS_")}
    env.update({"EHS_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    out = tmp_path / "up.out"
    cmd = [sys.executable, "-m", "cli.main", "up", "--demo", "--port", "0", "--speed", "20"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=open(out, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        runtime = tmp_path / "var" / "runtime.json"
        wait_for(lambda: runtime.exists() or proc.poll() is not None, timeout=120, message="ehs up to start")
        assert proc.poll() is None, out.read_text()
        text = out.read_text()
        assert "embedded pgserver" in text and "embedded " in text and "TimescaleDB features: off" in text
        api = json.loads(runtime.read_text())["api_url"]
        assert f"API      : {api}" in out.read_text()
        assert f"app      : {api}/app/" in out.read_text()
        with urllib.request.urlopen(f"{api}/app/", timeout=5) as resp:  # noqa: S310 - the PWA is served too
            assert resp.status == 200 and b"/app/js/app.js" in resp.read()
        with pytest.raises(urllib.error.HTTPError) as refused:  # nothing without signing in
            _get(f"{api}/api/v1/latest")
        assert refused.value.code == 401
        token = _sign_in(api, out.read_text())
        latest = wait_for(
            lambda: len(_get(f"{api}/api/v1/latest", token)) > 80 and _get(f"{api}/api/v1/latest", token),
            timeout=60,
            message="readings of most demo points",
        )
        assert {row["site"] for row in latest} == {"cz01"}
        # live: ingest's per-batch NOTIFY reaches a WebSocket subscriber through the API
        with connect(api.replace("http", "ws", 1) + "/api/v1/ws", compression=None) as ws:
            ws.send(json.dumps({"type": "auth", "token": token}))
            ws.send(json.dumps({"type": "subscribe", "sites": ["cz01"]}))
            kinds = [json.loads(ws.recv(timeout=30))["type"] for _ in range(4)]
            assert kinds[:3] == ["welcome", "subscribed", "readings"] and kinds[3] == "readings"
        ready = _get(f"{api}/readyz")
        assert any(s["service"] == "ingest" and not s["stale"] for s in ready["services"])

        # a second terminal reaches the running system through the runtime file
        cli_env = {**env}
        reply = subprocess.run(
            [sys.executable, "-m", "cli.main", "simulate", "incident", "thermal_runaway"],
            env=cli_env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reply.returncode == 0, reply.stderr
        assert "started in area formation" in reply.stdout

        def hot_cell() -> bool:
            rows = _get(f"{api}/api/v1/latest", token)
            return any(r["device"] == "form-cab-01" and r["key"] == "cell_temp_c" and r["value"] > 60 for r in rows)

        wait_for(hot_cell, timeout=60, message="the runaway cell temperature to reach the API")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    text = out.read_text()
    assert code == 0, text
    assert "Stopped." in text
    assert not (tmp_path / "var" / "runtime.json").exists()
    assert (tmp_path / "var" / "pgdata" / "PG_VERSION").exists()  # data kept between runs
    assert not (tmp_path / "var" / "pgdata" / "postmaster.pid").exists()  # the embedded database stopped
