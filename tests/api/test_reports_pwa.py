"""The regulator's view of the report archive in the PWA, in headless Chromium (Debian's, driven by Playwright)
against a running API: signed in as a regulator, the Reports tab lists only the reports of their compliance
areas, in Chinese, and a download is the archived file byte for byte (and audited). A person without the
permission has no Reports tab."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import psycopg
import pytest

from api.main import create_app
from core.clock import SystemClock
from reports import service
from reports.model import Params, month_period
from tests.api.conftest import PASSWORD, SITE, settings_for
from tests.reports import world as month
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.db]
CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"


def _archive(url: str, areas: tuple[str, ...] | None) -> dict:
    since, until = month_period("2026-03", "Asia/Shanghai")
    with psycopg.connect(url) as conn:
        run = service.create_run(
            conn,
            kind="alarm_month",
            params=Params(site=SITE, since=since, until=until, areas=areas),
            formats=["pdf"],
            actor="user:ehs_manager",
        )
        conn.commit()
    return service.execute(lambda: psycopg.connect(url), run["id"], clock=SystemClock())["files"][0]


def _sign_in(page, username: str) -> None:
    page.goto("/app/")
    page.fill("#login [name=username]", username)
    page.fill("#login [name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector(".compliance-overview h2" if username == "regulator" else ".inbox h2")  # regulators' home


def test_the_regulator_sees_and_downloads_their_reports(world_url: str, serve, tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    month.build(world_url)
    whole = _archive(world_url, None)
    wastewater = _archive(world_url, ("wastewater",))
    core, api = settings_for(world_url)
    base = f"http://{serve(create_app(core, api))}"
    RESULTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base, accept_downloads=True
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _sign_in(page, "regulator")
            page.wait_for_selector("#nav-reports:not([hidden])")
            page.click("#nav-reports")
            page.wait_for_selector(".reports li")
            listed = page.eval_on_selector_all(".reports li", "els => els.map(e => Number(e.dataset.report))")
            assert listed == [wastewater["id"]]  # not the whole-site report
            text = page.inner_text("#view")
            assert "报表存档" in text and "报警管理月报" in text and wastewater["sha256"][:16] in text
            assert "2026-03-01 00:00 — 2026-04-01 00:00 (Asia/Shanghai)" in text  # the site's month
            page.screenshot(path=str(RESULTS / "pwa-regulator-reports-390x844.png"))
            with page.expect_download() as info:
                page.click(f"button.download[data-id='{wastewater['id']}']")
            saved = tmp_path / "got.pdf"
            info.value.save_as(saved)
            assert info.value.suggested_filename == wastewater["filename"]
            assert hashlib.sha256(saved.read_bytes()).hexdigest() == wastewater["sha256"]
            assert not errors, errors
            context.close()
            # an operator has no Reports tab
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
            page = context.new_page()
            _sign_in(page, "operator")
            page.wait_for_function("() => document.body.classList.contains('signed-in')")
            assert page.is_hidden("#nav-reports")
            context.close()
        finally:
            browser.close()
    with psycopg.connect(world_url) as conn:
        downloads = conn.execute(
            "SELECT actor, target FROM audit_entry WHERE action = 'export.report.download'"
        ).fetchall()
    assert downloads == [("user:regulator", f"report:{wastewater['id']}")] and whole["id"] != wastewater["id"]
