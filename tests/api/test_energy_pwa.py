"""The energy page of the PWA and the energy panel of the control-room screen, in headless Chromium (Debian's,
driven by Playwright) against a running API.

The energy API (``/api/v1/energy/...``) is built in parallel with these pages, so its answers are served here by
Playwright's request interception with the JSON shapes of the shared contract (every other request reaches the real
API and database); a test against the real energy API belongs with it. Without the energy API, both front ends say
so instead of failing.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from tests.api.conftest import PASSWORD, SITE, settings_for
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.db, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"

AREA = {"kgce": 0.0, "cost": 0.0, "by_medium": {}, "output": None, "per_unit_kgce": None}
SUMMARY = {
    "site": SITE,
    "today": {
        "kgce": 2716.4,
        "cost": 18450.0,
        "by_area": [
            {
                **AREA,
                "area": "formation",
                "name": "化成",
                "kgce": 1843.2,
                "cost": 12015.5,
                "by_medium": {"electricity": 14997.0, "nitrogen": 120.5},
                "output": 52000,
                "per_unit_kgce": 0.0354,
            },
            {
                **AREA,
                "area": "drying",
                "name": "极片烘烤间",
                "kgce": 873.2,
                "cost": 6434.5,
                "by_medium": {"electricity": 7105.0, "steam": 12.25},
                "output": None,
                "per_unit_kgce": None,
            },
        ],
    },
    "month": {
        "kgce": 16004.0,
        "cost": 109876.0,
        "by_area": [
            {
                **AREA,
                "area": "formation",
                "name": "化成",
                "kgce": 11008.0,
                "cost": 71234.0,
                "by_medium": {"electricity": 89567.0},
                "output": 312000,
                "per_unit_kgce": 0.0353,
            }
        ],
    },
    "abnormal": [
        {
            "meter": "e-drying",
            "name": "烘烤用电",
            "area": "drying",
            "expected": 420.0,
            "actual": 655.0,
            "unit": "kWh",
            "since": "2026-03-05T01:15:00Z",
        },
        {
            "meter": "ca-main",
            "name": "压缩空气总量",
            "area": "utilities",
            "expected": 1100.0,
            "actual": 1900.0,
            "unit": "Nm³",
            "since": "2026-03-05T16:00:00Z",
        },
    ],
    "tou_share": {"peak": 0.41, "flat": 0.35, "valley": 0.24, "critical": 0.0},
}
FLOW = {
    "unit": "kWh",
    "nodes": [
        {"name": "meter:e-main", "label": "全厂总进线", "kind": "meter"},
        {"name": "meter:e-formation", "label": "化成用电", "kind": "meter"},
        {"name": "meter:e-drying", "label": "烘烤用电", "kind": "meter"},
        {"name": "area:formation", "label": "化成", "kind": "area"},
        {"name": "area:drying", "label": "极片烘烤间", "kind": "area"},
        {"name": "loss:e-main", "label": "损耗及未计量", "kind": "unmetered"},
    ],
    "links": [
        {"source": "meter:e-main", "target": "meter:e-formation", "value": 14997.0},
        {"source": "meter:e-main", "target": "meter:e-drying", "value": 7105.0},
        {"source": "meter:e-main", "target": "loss:e-main", "value": 690.0},
        {"source": "meter:e-formation", "target": "area:formation", "value": 14997.0},
        {"source": "meter:e-drying", "target": "area:drying", "value": 7105.0},
    ],
}
LEDGER = {
    "rows": [
        {
            "key": "formation",
            "name": "化成",
            "medium": "electricity",
            "bucket": "2026-03-01",
            "quantity": 14997.0,
            "unit": "kWh",
            "kgce": 1843.2,
            "cost": 12015.5,
            "quality": {"measured": 96, "estimated": 0, "missing": 0},
        },
        {
            "key": "drying",
            "name": "极片烘烤间",
            "medium": "electricity",
            "bucket": "2026-03-01",
            "quantity": 7105.0,
            "unit": "kWh",
            "kgce": 873.2,
            "cost": None,
            "quality": {"measured": 90, "estimated": 4, "missing": 2},
        },
    ]
}


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


class FakeEnergyApi:
    """Answers /api/v1/energy/... with the contract's JSON; records what the pages asked for."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []

    def __call__(self, route) -> None:
        url = urlparse(route.request.url)
        query = parse_qs(url.query)
        self.requests.append((url.path, query))
        if not route.request.headers.get("authorization"):
            route.fulfill(status=401, content_type="application/json", body='{"detail": "not signed in"}')
            return
        if url.path.endswith("/ledger") and query.get("format") == ["csv"]:
            route.fulfill(status=200, content_type="text/csv", body="key,quantity\nformation,14997.0\n")
            return
        body = {"/api/v1/energy/summary": SUMMARY, "/api/v1/energy/flow": FLOW, "/api/v1/energy/ledger": LEDGER}.get(
            url.path
        )
        if body is None:
            route.fulfill(status=404, content_type="application/json", body='{"detail": "Not Found"}')
        else:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body, ensure_ascii=False))


def _sign_in(page, username: str = "operator") -> None:
    page.goto("/app/")
    page.fill("#login [name=username]", username)
    page.fill("#login [name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector(".inbox h2")


def test_energy_page_shows_the_figures_per_process(browser, world_url: str, serve, tmp_path) -> None:
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    fake = FakeEnergyApi()
    page.route("**/api/v1/energy/**", fake)
    try:
        _sign_in(page)
        page.click("nav.bottom a[data-tab=energy]")
        page.wait_for_selector("#energy-today tr[data-area=formation]")
        today = page.inner_text("#energy-today")
        assert "今日" in today and "2,716" in today and "¥18,450" in today
        row = page.inner_text("#energy-today tr[data-area=formation]")
        assert "化成" in row and "1,843.2" in row and "14,997" in row and "52,000" in row and "0.035" in row
        assert "氮气" in today and "蒸汽" in today  # per-medium columns, named in Chinese
        assert "109,876" in page.inner_text("#energy-month")
        tou = {b: page.get_attribute(f"#energy-tou tr[data-band={b}] meter", "value") for b in ("peak", "valley")}
        assert tou == {"peak": "0.41", "valley": "0.24"}
        abnormal = page.eval_on_selector_all("#energy-abnormal li", "els => els.map(e => e.dataset.meter)")
        assert abnormal == ["ca-main", "e-drying"]  # the largest excess first
        # the bar chart of today is drawn by the vendored ECharts
        page.wait_for_function(
            "() => window.echarts && echarts.getInstanceByDom(document.getElementById('energy-today-chart'))"
        )
        bars = page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('energy-today-chart')).getOption().series[0].data"
        )
        assert bars == [1843.2, 873.2]
        assert ("/api/v1/energy/summary", {"site": [SITE]}) in fake.requests
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "pwa-energy-390x844.png"), full_page=True)
        # the ledger view and its downloads
        page.click("#energy-ledger-link")
        page.wait_for_selector("#ledger-rows tr[data-key=drying]")
        drying = page.inner_text("#ledger-rows tr[data-key=drying]")
        assert "7,105" in drying and "估算 4 个时段" in drying and "缺失 2 个时段" in drying and "—" in drying
        ledger_query = next(q for p, q in fake.requests if p.endswith("/ledger"))
        assert ledger_query["by"] == ["area"] and ledger_query["bucket"] == ["day"]
        # this month's days in the site's time zone (Asia/Shanghai: a day starts at 16:00 UTC the day before)
        assert ledger_query["start"][0].endswith("T16:00:00.000Z") and ledger_query["end"][0].endswith("T16:00:00.000Z")
        with page.expect_download() as info:
            page.click("button.download[data-format=csv]")
        saved = tmp_path / "ledger.csv"
        info.value.save_as(saved)
        assert saved.read_text() == "key,quantity\nformation,14997.0\n"
        assert info.value.suggested_filename.startswith(f"energy-{SITE}-area-day-")
        assert [q.get("format") for p, q in fake.requests if p.endswith("/ledger")][-1] == ["csv"]
        assert not errors, errors
    finally:
        context.close()


def test_the_energy_tab_shows_only_with_energy_read(browser, world_url: str, serve) -> None:
    """The 能源 tab is for those who may read energy (energy.read): operators yes, regulators (whose home is the
    compliance overview) no, as the reports and compliance tabs follow their permissions."""
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/app/")
        assert page.is_hidden("#nav-energy")  # signed out: nobody's permissions
        _sign_in(page, "viewer")
        assert "energy.read" in page.evaluate("() => JSON.parse(localStorage.getItem('ehs.me')).permissions")
        assert page.is_visible("#nav-energy")
        page.evaluate("() => { localStorage.clear(); }")
        page.goto("/app/")
        page.fill("#login [name=username]", "regulator")
        page.fill("#login [name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector(".compliance-overview h2")
        permissions = page.evaluate("() => JSON.parse(localStorage.getItem('ehs.me')).permissions")
        assert "energy.read" not in permissions and "compliance.read" in permissions
        assert page.is_visible("#nav-compliance") and page.is_hidden("#nav-energy")
        assert not errors, errors
    finally:
        context.close()


def test_without_the_energy_api_the_page_says_so(browser, world_url: str, serve) -> None:
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _sign_in(page)
        # a server of a version without the energy API (or with it switched off) answers 404 there
        page.route(
            "**/api/v1/energy/**",
            lambda route: route.fulfill(status=404, content_type="application/json", body='{"detail": "Not Found"}'),
        )
        page.goto("/app/#/energy")
        page.wait_for_selector("#energy-unavailable")
        assert "尚未启用能源台账" in page.inner_text("#energy-unavailable")
        page.goto("/screen/")
        page.wait_for_selector("#areas .tile")
        assert page.is_hidden("#energy-box")
        assert not errors, errors
    finally:
        context.close()


def test_screen_draws_the_sankey_of_the_meter_tree(browser, world_url: str, serve) -> None:
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    fake = FakeEnergyApi()
    page.route("**/api/v1/energy/**", fake)
    try:
        _sign_in(page, "viewer")
        page.goto("/screen/")
        page.wait_for_selector("#energy-box:not(.hidden) #energy-flow canvas")
        option = page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('energy-flow')).getOption().series[0]"
        )
        assert option["type"] == "sankey"
        assert [n["name"] for n in option["data"]] == [n["name"] for n in FLOW["nodes"]]
        assert {(link["source"], link["target"]) for link in option["links"]} == {
            (link["source"], link["target"]) for link in FLOW["links"]
        }
        # the nodes were laid out (ECharts computed their places), and the canvas has pixels drawn on it
        laid_out = page.evaluate("""() => {
            const chart = echarts.getInstanceByDom(document.getElementById('energy-flow'));
            const data = chart.getModel().getSeriesByIndex(0).getData();
            const layouts = Array.from({length: data.count()}, (_, i) => data.getItemLayout(i));
            return layouts.filter((l) => l && l.dy > 0).length;
        }""")
        assert laid_out == len(FLOW["nodes"])
        painted = page.evaluate("""() => {
            const c = document.querySelector('#energy-flow canvas');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
            return n;
        }""")
        assert painted > 1000
        bars = page.evaluate(
            "() => echarts.getInstanceByDom(document.getElementById('energy-bars')).getOption()"
            ".series.map((s) => s.data)"
        )
        assert bars == [[1843.2, 873.2], [12015.5, 6434.5]]
        assert "能源流向与今日能耗" in page.inner_text("#energy-box h2")
        flow_query = next(q for p, q in fake.requests if p.endswith("/flow"))
        assert flow_query["site"] == [SITE] and flow_query["medium"] == ["electricity"]
        assert flow_query["start"][0] < flow_query["end"][0]
        assert flow_query["start"][0].endswith("T16:00:00.000Z")  # today began at midnight in Asia/Shanghai
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "screen-energy-1920x1080.png"))
        assert not errors, errors
    finally:
        context.close()


# ---- any answer of the contract's shape renders (property test) ------------------------------------------------

_TEXT = st.text(alphabet="化成烘烤abcXYZ019<>&\"'/=-_", min_size=1, max_size=12)
_NUMBER = st.one_of(
    st.none(), st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), st.integers(min_value=0, max_value=10**12)
)
_AREA = st.fixed_dictionaries(
    {"area": _TEXT, "name": _TEXT},
    optional={
        "kgce": _NUMBER,
        "cost": _NUMBER,
        "output": _NUMBER,
        "per_unit_kgce": _NUMBER,
        "by_medium": st.dictionaries(st.sampled_from(["electricity", "water", "steam", "x<y>"]), _NUMBER, max_size=4),
    },
)
_PERIOD = st.fixed_dictionaries({"by_area": st.lists(_AREA, max_size=6)}, optional={"kgce": _NUMBER, "cost": _NUMBER})
_SUMMARY = st.fixed_dictionaries(
    {},
    optional={
        "site": _TEXT,
        "today": _PERIOD,
        "month": _PERIOD,
        "abnormal": st.lists(
            st.fixed_dictionaries(
                {"meter": _TEXT},
                optional={
                    "name": _TEXT,
                    "area": _TEXT,
                    "expected": _NUMBER,
                    "actual": _NUMBER,
                    "unit": _TEXT,
                    "since": st.one_of(st.none(), st.just("2026-03-05T01:15:00Z"), _TEXT),
                },
            ),
            max_size=12,
        ),
        "tou_share": st.fixed_dictionaries(
            {}, optional={b: st.one_of(st.none(), st.floats(0, 1)) for b in ("peak", "flat", "valley", "critical")}
        ),
    },
)


def test_any_summary_of_the_contract_shape_renders_escaped(browser, world_url: str, serve) -> None:
    """Whatever the energy API answers in the contract's shape (missing fields, nulls, huge numbers, names with
    markup), the page renders it without a script error, one row per process, and names as text."""
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    current: dict = {}
    page.route(
        "**/api/v1/energy/summary**",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(current["body"], ensure_ascii=False)
        ),
    )
    shown = [0]
    try:
        _sign_in(page)

        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(summary=_SUMMARY)
        def renders(summary: dict) -> None:
            current["body"] = summary
            shown[0] += 1
            # a new route on an empty view: what is waited for below is this answer's page, not the last one's
            page.evaluate(f"document.getElementById('view').replaceChildren(); location.hash = '#/energy?n={shown[0]}'")
            page.wait_for_selector("#energy-abnormal")
            for card, key in (("#energy-today", "today"), ("#energy-month", "month")):
                areas = summary.get(key, {}).get("by_area", [])
                assert page.locator(f"{card} tbody tr").count() == len(areas)
                text = page.inner_text(card)
                assert all(a["name"] in text for a in areas)
            # markup in names stays text: nothing but the page's own elements exist
            assert page.locator("#view script, #view [onerror]").count() == 0
            assert not errors, errors

        renders()
    finally:
        context.close()


@st.composite
def _flows(draw) -> dict:
    """A meter tree's flow: nodes with unique names, links from earlier to later nodes (a DAG, as the contract's
    tree is), values from zero to huge; sometimes no nodes at all."""
    names = draw(st.lists(_TEXT, min_size=0, max_size=10, unique=True))
    nodes = [
        {
            "name": n,
            "label": draw(_TEXT),
            "kind": draw(st.sampled_from(["meter", "area", "loss", "unmetered", "other"])),
        }
        for n in names
    ]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    links = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=12)) if pairs else []
    return {
        "unit": draw(_TEXT),
        "nodes": nodes,
        "links": [{"source": a, "target": b, "value": draw(st.floats(0, 1e9))} for a, b in links],
    }


def test_screen_draws_any_flow_of_the_contract_shape(browser, world_url: str, serve) -> None:
    """Whatever meter tree the flow endpoint describes (and whatever summary comes with it), the screen draws it
    without a script error: a Sankey with every node when there are nodes, no panel when there is nothing."""
    base = f"http://{serve(create_app(*settings_for(world_url)))}"
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    current: dict = {}

    def answer(route) -> None:
        body = current["flow"] if "/flow" in route.request.url else current["summary"]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body, ensure_ascii=False))

    page.route("**/api/v1/energy/**", answer)
    try:
        _sign_in(page, "viewer")
        current.update(flow=FLOW, summary=SUMMARY)
        page.goto("/screen/")
        page.wait_for_selector("#energy-box:not(.hidden) #energy-flow canvas")
        load = page.evaluate("() => typeof echarts")
        assert load == "object"

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(flow=_flows(), summary=_SUMMARY)
        def draws(flow: dict, summary: dict) -> None:
            current.update(flow=flow, summary=summary)
            page.reload()
            page.wait_for_function(
                "() => document.getElementById('energy-sub').textContent !== ''"
                " || document.getElementById('energy-box').classList.contains('hidden')"
            )
            page.wait_for_load_state("networkidle")
            areas = summary.get("today", {}).get("by_area", [])
            if flow["nodes"]:
                page.wait_for_selector("#energy-flow canvas")
                drawn = page.evaluate(
                    "() => echarts.getInstanceByDom(document.getElementById('energy-flow'))"
                    ".getOption().series[0].data.map((n) => n.name)"
                )
                assert drawn == [n["name"] for n in flow["nodes"]]
            elif not areas:
                assert page.is_hidden("#energy-box")
            assert page.is_hidden("#message"), page.inner_text("#message")
            assert not errors, errors

        draws()
    finally:
        context.close()
