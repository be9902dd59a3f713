"""The regulator's compliance overview in the PWA, in headless Chromium (Debian's, driven by Playwright) against a
running API: a regulator lands on it after sign-in, in Chinese, and sees their outfall against its limits, this
month's exceedances, the compliance alarm (not the formation area's safety alarm) and the hazardous-waste status;
English on request. A screenshot of the phone view is left in test-results/."""

from __future__ import annotations

import os

import pytest

from api.main import create_app
from tests.api.conftest import PASSWORD, settings_for
from tests.api.test_compliance_api import NOW, TZ, overview  # noqa: F401 - the fixture
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.db]
CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"


def _sign_in(page, lang: str = "zh-CN") -> None:
    page.goto("/app/")
    page.evaluate(f"() => localStorage.setItem('ehs.lang', '{lang}')")
    page.goto("/app/")
    page.fill("#login [name=username]", "regulator")
    page.fill("#login [name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector(".compliance-overview [data-outfall='ww-final']")  # the regulator's home


def test_the_regulator_lands_on_the_compliance_overview(overview, serve) -> None:  # noqa: F811
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    core, api = settings_for(overview.url)
    base = f"http://{serve(create_app(core, api))}"  # the real clock: the data lie in June, looked back to
    RESULTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _sign_in(page)
            assert page.is_visible("#nav-compliance") and "current" in page.get_attribute("#nav-compliance", "class")
            assert "环保合规总览" in page.inner_text("#view")
            page.fill("#compliance-day", NOW.astimezone(TZ).date().isoformat())  # 2026-06-15
            page.dispatch_event("#compliance-day", "change")
            page.wait_for_selector(".compliance-overview tr[data-pollutant='w01018'] td.bad")
            assert page.evaluate("() => location.hash") == "#/compliance?day=2026-06-15"
            text = page.inner_text("#view")
            assert "污水总排口" in text and "化学需氧量" in text and "本月超标（4）" in text and "小时均值" in text
            assert "06-15 15:00 · ww-final" in text and "06-15 09:00 · ww-final" in text  # the site's clock
            cod = page.inner_text("[data-outfall='ww-final'] tr[data-pollutant='w01018']")
            assert "≤ 150" in cod and "71.5" in cod and "超标 1/14" in cod and "无效 1" in cod
            ph = page.inner_text("[data-outfall='ww-final'] tr[data-pollutant='w01001'] [data-cell='today']")
            assert "15 个时段，超标 2，最大 9.9" in ph
            alarms = page.eval_on_selector_all(".compliance-overview .alarms a", "els => els.map(e => e.textContent)")
            assert len(alarms) == 1  # the formation area's alarms are not theirs
            assert "在库 1 个容器" in page.inner_text("#hazwaste-status")
            page.screenshot(path=str(RESULTS / "pwa-regulator-compliance-390x844.png"), full_page=True)
            page.click(".compliance-overview .alarms a")  # the alarm opens in the alarm view
            page.wait_for_function("() => location.hash.startsWith('#/alarms/')")
            assert not errors, errors
            context.close()
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en", base_url=base)
            page = context.new_page()
            _sign_in(page, "en")
            page.goto("/app/#/compliance?day=2026-06-15")
            page.wait_for_selector(".compliance-overview tr[data-pollutant='w01018'] td.bad")
            text = page.inner_text("#view")
            assert "Environmental compliance overview" in text and "Exceedances this month (4)" in text
            assert "COD" in text and "daily mean" in text
            context.close()
        finally:
            browser.close()
