"""Vendored front-end files: the file is the one its note names (hash), its licenses travel with it, and every
file the service worker precaches exists (one missing file makes the whole precache fail)."""

from __future__ import annotations

import hashlib
import re

from tests.support import REPO_ROOT

PWA = REPO_ROOT / "mobile_pwa"
ECHARTS = PWA / "vendor" / "echarts"


def test_echarts_is_the_recorded_release_with_its_licenses() -> None:
    note = (ECHARTS / "VERSION.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", note)
    assert recorded, "VERSION.md names no sha256"
    assert hashlib.sha256((ECHARTS / "echarts.min.js").read_bytes()).hexdigest() == recorded.group(1)
    version = re.search(r"`echarts` (\d+\.\d+\.\d+)", note)
    assert version and f'.version="{version.group(1)}"' in (ECHARTS / "echarts.min.js").read_text(encoding="utf-8")
    assert "Apache License" in (ECHARTS / "LICENSE").read_text(encoding="utf-8")
    assert "Apache ECharts" in (ECHARTS / "NOTICE").read_text(encoding="utf-8")
    assert "Redistribution and use" in (ECHARTS / "LICENSE-d3").read_text(encoding="utf-8")


def test_every_precached_file_exists() -> None:
    sw = (PWA / "sw.js").read_text(encoding="utf-8")
    shell = re.search(r"const SHELL_FILES = \[(.*?)\];", sw, re.S)
    assert shell
    paths = re.findall(r'"(/app/[^"]*)"', shell.group(1))
    assert "/app/vendor/echarts/echarts.min.js" in paths and "/app/js/energy.js" in paths
    for path in paths:
        rel = path.removeprefix("/app/") or "index.html"
        assert (PWA / rel).is_file(), path
    # every module of the app is precached (a page opened offline must not miss one)
    modules = {f"/app/js/{p.name}" for p in (PWA / "js").glob("*.js")}
    assert modules <= set(paths), sorted(modules - set(paths))


def test_echarts_is_served_to_both_front_ends_from_our_origin() -> None:
    from starlette.testclient import TestClient

    from api.main import create_app
    from core.settings import CoreSettings

    client = TestClient(create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused")))
    resp = client.get("/app/vendor/echarts/echarts.min.js")
    assert resp.status_code == 200 and "javascript" in resp.headers["content-type"]
    assert resp.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    for page, module in (("/app/js/energy.js", "./echarts.js"), ("/screen/screen.js", "/app/js/echarts.js")):
        assert f'from "{module}"' in client.get(page).text
    assert '"/app/vendor/echarts/echarts.min.js"' in client.get("/app/js/echarts.js").text
