"""The emissions panel of the control-room screen, in headless Chromium (Debian's, driven by Playwright) against a
running API and database: each outfall's latest values against their limits coloured by the ratio, today's
compliance status and this month's exceedances, from ``GET /api/v1/compliance/overview``; Chinese and English.
A screenshot is left in test-results/."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.main import create_app
from compliance.config import ComplianceSection
from compliance.service import apply_compliance
from tests.api.conftest import PASSWORD, SITE, settings_for
from tests.api.test_compliance_api import OUTFALLS, RESULT
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.db, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"
TZ = ZoneInfo("Asia/Shanghai")


def _seed(url: str) -> None:
    """The outfall, its latest real-time values (now) (COD 171 against 150: over; pH 7.5 within 6-9) and
    one pH hour of today judged over its limit (the real clock: today is the site's today)."""
    now = datetime.now(UTC)
    today = datetime.combine(now.astimezone(TZ).date(), datetime.min.time(), TZ)
    with psycopg.connect(url) as conn:
        apply_compliance(conn=conn, section=ComplianceSection.model_validate(OUTFALLS), source="test")
        conn.execute(RESULT, (SITE, "w01001", "hour", today, 9.6, 60, 60, True, 6.0, 9.0, "GB 30484-2013 v1", True))
        conn.execute(
            RESULT,
            (
                SITE,
                "w01018",
                "day",
                today - timedelta(days=1),
                120.0,
                1440,
                1440,
                True,
                None,
                150.0,
                "GB 30484-2013 v1",
                False,
            ),
        )
        for key, value in (("cod_mg_l", 171.0), ("ph_ph", 7.5)):
            point = conn.execute(
                "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = 'ww-01' AND p.key = %s",
                (key,),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, 0)",
                (now, point, value),  # newer than the world's own readings
            )
        conn.commit()


def test_screen_shows_outfall_values_against_limits(world_url: str, serve) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    _seed(world_url)
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    RESULTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=base)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("/app/")
            page.evaluate("() => localStorage.setItem('ehs.lang', 'zh-CN')")
            page.goto("/app/")
            page.fill("#login [name=username]", "viewer")
            page.fill("#login [name=password]", PASSWORD)
            page.click("#login button[type=submit]")
            page.wait_for_selector(".inbox h2")
            page.goto("/screen/")
            cod = "#emissions-box:not(.hidden) [data-outfall='ww-final'] [data-pollutant='w01018']"
            page.wait_for_selector(cod)
            assert "排放口在线监测" in page.inner_text("#emissions-box h2")
            row = page.inner_text(cod)
            assert "化学需氧量" in row and "171" in row and "≤ 150" in row
            assert "bad" in page.get_attribute(cod, "class")  # 171 / 150 beyond the limit: red
            ph = "[data-outfall='ww-final'] [data-pollutant='w01001']"
            assert "7.5" in page.inner_text(ph) and "6–9" in page.inner_text(ph)
            assert "ok" in page.get_attribute(ph, "class").split()  # below 90 % of the limit: green
            assert page.eval_on_selector(f"{cod} .bar i", "e => e.style.width") == "100%"
            status = page.inner_text("[data-outfall='ww-final'] .status")
            assert status == "今日超标 1 次"  # the pH hour judged today
            today = datetime.now(UTC).astimezone(TZ).strftime("%m-%d")
            assert f"{today} 00:00 · ww-final · pH · 9.6 (6–9)" in page.inner_text("#emissions-exceedances")
            assert (
                page.eval_on_selector("section.areas", "e => e.getBoundingClientRect().height") > 200
            )  # 20vh at least
            bars = page.evaluate(
                "() => echarts.getInstanceByDom(document.getElementById('emissions-chart')).getOption()"
                ".series[0].data.map((d) => d.value)"
            )
            assert bars == [114, 83.3]  # latest / limit in percent: 171/150, and pH max(7.5/9, 6/7.5)
            page.screenshot(path=str(RESULTS / "screen-emissions-1920x1080.png"))
            assert not errors, errors
            page.goto("/screen/?lang=en")
            page.wait_for_selector(cod)
            assert "Outfall emissions" in page.inner_text("#emissions-box h2")
            assert "COD" in page.inner_text(cod)
            context.close()
        finally:
            browser.close()
