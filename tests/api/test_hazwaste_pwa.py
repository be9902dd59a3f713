"""The PWA as the scanner, in headless Chromium against a running API: the page a container's QR code opens,
a step recorded online, a step recorded offline (queued with the time it was taken) and sent when the network
returns."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import psycopg
import pytest

from api.main import create_app
from tests.api import hazwaste_world
from tests.api.conftest import PASSWORD, settings_for
from tests.support import wait_for

pytestmark = [pytest.mark.db, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)", pytrace=False
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


def _entries(url: str, container_id: int) -> list[tuple[str, datetime, float]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT stage, at, quantity_kg FROM hw_ledger WHERE container_id = %s ORDER BY id", (container_id,)
        ).fetchall()


def test_scan_page_records_steps_online_and_offline(browser, world_url: str, serve) -> None:
    hazwaste_world.seed(world_url)
    cid = hazwaste_world.container(world_url)
    app = create_app(*settings_for(world_url))
    base = f"http://{serve(app)}"
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN", base_url=base
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/app/")
        page.fill("#login [name=username]", "operator")
        page.fill("#login [name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector(".inbox h2")
        # what the QR code opens
        page.goto(f"/app/#/waste/containers/{cid}")
        page.wait_for_selector(f"article.waste[data-container-id='{cid}'] #step")
        page.fill("#step [name=quantity_kg]", "12.5")
        page.click("#step button[type=submit]")
        page.wait_for_selector("#history li[data-batch^='HWCS']")
        assert [(s, kg) for s, _, kg in _entries(world_url, cid)] == [("generation", 12.5)]

        # offline: into storage is queued with the time it was taken
        context.set_offline(True)
        page.select_option("#step [name=stage]", "storage_in")
        page.select_option("#step [name=facility]", "WH-1")
        taken = datetime.now(UTC)
        page.click("#step button[type=submit]")
        page.wait_for_selector("#queued span")
        assert len(_entries(world_url, cid)) == 1
        page.wait_for_timeout(1500)  # some time offline, so that sent != taken
        online_at = datetime.now(UTC)
        context.set_offline(False)
        wait_for(lambda: len(_entries(world_url, cid)) == 2, timeout=30, message="the queued step on the server")
        stage, at, kg = _entries(world_url, cid)[1]
        assert (stage, kg) == ("storage_in", 12.5)
        assert taken <= at < online_at  # the time it was taken, not when it was sent
        page.wait_for_selector("#history li[data-batch^='HWRK']", timeout=30_000)
        assert page.evaluate("import('/app/js/outbox.js').then(m => m.all()).then(a => a.length)") == 0
        assert not errors, errors
    finally:
        context.close()
