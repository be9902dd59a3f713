"""Carbon beside energy on the PWA energy page and the control-room screen, in headless Chromium against the REAL
API (GET /api/v1/carbon/summary) on the carbon test world. The energy summary is served by interception (as in
test_energy_pwa) so that its areas are known; carbon is not. The app runs on the system clock (sign-in tokens are
checked against real time), so the activity data fill the site's current month, whichever it is.

By hand: formation used 100 kWh and drying 50 kWh every hour of this month (site meter 150 kWh); the grid factor
is Jiangsu 2023's 0.5827 kgCO2/kWh (location; the newest published at a two-year lag) and the national residual
0.6096 (market, no certificates), so in a month of h hours formation emits h x 100 x 0.5827 kg (744 h: 43.35 t,
market 45.35 t), drying half that; today (24 h) formation 1.398 t and drying 0.699 t; every hour 582.7 gCO2/kWh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.main import create_app
from carbon.ledger import SITE as SITE_KEY
from carbon.ledger import Activity
from carbon.sources import RowsSource
from tests.api import carbon_world
from tests.api.conftest import PASSWORD, SITE, settings_for
from tests.api.test_energy_pwa import RESULTS, FakeEnergyApi, _sign_in, browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.db, pytest.mark.browser]
ZONE = ZoneInfo("Asia/Shanghai")  # site s1's time zone
LOCATION, RESIDUAL = 0.5827, 0.6096


def _month() -> tuple[datetime, datetime]:
    """The site's current month as UTC instants."""
    local = datetime.now(ZONE)
    start = datetime(local.year, local.month, 1, tzinfo=ZONE)
    end = datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=ZONE)
    return start.astimezone(UTC), end.astimezone(UTC)


def _t(kg: float) -> str:
    """Tonnes as the page shows them in zh-CN: at most two decimals, grouped thousands."""
    return f"{kg / 1000:,.2f}".rstrip("0").rstrip(".")


def _source() -> RowsSource:
    (t, end), rows = _month(), []
    while t < end:
        rows += [
            ("area", Activity("formation", "electricity", t, 100.0, "kWh")),
            ("area", Activity("drying", "electricity", t, 50.0, "kWh")),
            ("site", Activity(SITE_KEY, "electricity", t, 150.0, "kWh")),
        ]
        t += timedelta(hours=1)
    return RowsSource(rows)


def _app(url: str):
    carbon_world.seed(url)
    app = create_app(*settings_for(url))
    app.state.carbon_source = _source()
    return app


def test_energy_page_shows_carbon_per_process(browser, world_url: str, serve) -> None:  # noqa: F811
    base = f"http://{serve(_app(world_url))}"
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id="Asia/Shanghai", base_url=base
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    carbon_requests: list[str] = []
    page.on("request", lambda r: carbon_requests.append(r.url) if "/api/v1/carbon/" in r.url else None)
    page.route("**/api/v1/energy/**", FakeEnergyApi())
    try:
        _sign_in(page)
        page.click("nav.bottom a[data-tab=energy]")
        page.wait_for_selector("#carbon #carbon-month tr[data-area=formation]")
        start, end = _month()
        hours = (end - start) // timedelta(hours=1)
        period = start.astimezone(ZONE).strftime("%Y-%m")
        card = page.inner_text("#carbon")
        assert f"本月碳排放 {period}" in card and "范围二（位置）" in card and "范围二（市场）" in card
        assert page.inner_text("#carbon [data-total=location]") == _t(hours * 150 * LOCATION)
        assert page.inner_text("#carbon [data-total=market]") == _t(hours * 150 * RESIDUAL)
        formation = page.inner_text("#carbon-month tr[data-area=formation]").split("\t")
        assert formation == ["化成", "0", _t(hours * 100 * LOCATION), _t(hours * 100 * RESIDUAL)]
        drying = page.inner_text("#carbon-month tr[data-area=drying]").split("\t")
        assert drying[1:] == ["0", _t(hours * 50 * LOCATION), _t(hours * 50 * RESIDUAL)]
        # no batch this month: no intensity per unit yet, and the page says so
        assert "本月尚无产出记录" in card
        assert page.inner_text("#carbon-today-mean .big-figure") == "583"
        page.wait_for_function(
            "() => window.echarts && echarts.getInstanceByDom(document.getElementById('carbon-hourly-chart'))"
        )
        line = page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('carbon-hourly-chart')).getOption()"
        )
        assert len(line["series"][0]["data"]) == 24 and {round(v, 6) for v in line["series"][0]["data"]} == {582.7}
        assert line["xAxis"][0]["data"][0] == "00:00" and line["xAxis"][0]["data"][-1] == "23:00"
        assert carbon_requests and all(f"site={SITE}" in u for u in carbon_requests)
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "pwa-energy-carbon-390x844.png"), full_page=True)
        # in English too
        page.evaluate("localStorage.setItem('ehs.lang', 'en')")
        page.reload()
        page.wait_for_selector("#carbon #carbon-month tr[data-area=formation]")
        card = page.inner_text("#carbon")
        assert f"Carbon this month {period}" in card and "Scope 2 (market) t" in card and "No output recorded" in card
        assert not errors, errors
    finally:
        context.close()


def test_energy_page_without_carbon_read_asks_nothing_of_carbon(browser, world_url: str, serve) -> None:  # noqa: F811
    base = f"http://{serve(_app(world_url))}"
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    carbon_requests: list[str] = []
    page.on("request", lambda r: carbon_requests.append(r.url) if "/api/v1/carbon/" in r.url else None)
    page.route("**/api/v1/energy/**", FakeEnergyApi())
    try:
        page.goto("/app/")
        page.fill("#login [name=username]", "regulator")
        page.fill("#login [name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector(".compliance-overview h2")  # a regulator's home; energy is reached by its address
        page.goto(f"{base}/app/#/energy")
        page.wait_for_selector("#energy-abnormal")
        assert page.locator("#carbon").count() == 0
        assert carbon_requests == []
        assert not errors, errors
    finally:
        context.close()


def test_screen_shows_carbon_today_beside_kgce(browser, world_url: str, serve) -> None:  # noqa: F811
    base = f"http://{serve(_app(world_url))}"
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/api/v1/energy/**", FakeEnergyApi())
    try:
        _sign_in(page, "viewer")
        page.goto("/screen/")
        page.wait_for_function("() => document.getElementById('energy-sub').textContent.includes('tCO2e')")
        assert "2.10 tCO2e" in page.inner_text("#energy-sub")  # 24 h x 150 kWh x 0.5827 = 2,097.7 kg
        # the sub-title is written before the charts are drawn: wait for the bar chart itself
        page.wait_for_function(
            "() => window.echarts && echarts.getInstanceByDom(document.getElementById('energy-bars'))"
        )
        option = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('energy-bars')).getOption()")
        assert option["xAxis"][0]["data"] == ["化成", "极片烘烤间"]
        assert [s["data"] for s in option["series"]] == [[1843.2, 873.2], [12015.5, 6434.5], [1.398, 0.699]]
        assert option["series"][2]["name"] == "今日碳排放 tCO2e"
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "screen-energy-carbon-1920x1080.png"))
        assert not errors, errors
    finally:
        context.close()
