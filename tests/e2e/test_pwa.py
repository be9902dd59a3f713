"""The PWA and the control-room screen in headless Chromium, against the real running system: PostgreSQL, the
broker, ingest, the alerts worker, the API and the simulator as separate processes (as ``ehs up`` runs them).

Chromium is Debian's (``/usr/bin/chromium``; CI installs it when missing), driven by Playwright. Screenshots of the
phone view (390x844) and the big screen (1920x1080) are written to ``test-results/``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyotp
import pytest
import yaml

from alerts.notifications import links
from api.apikeys import create_key
from api.policy import Role, console
from api.users import create_user
from cli.plantfile import apply_full, load_full
from core.embedded import free_port, with_dbname
from simulator.runner import send_control
from tests.support import REPO_ROOT, spawn, stop_process, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.db, pytest.mark.broker]

CHROMIUM = "/usr/bin/chromium"
RESULTS = REPO_ROOT / "test-results"
PASSWORD = "pwa e2e correct horse"
PHONE = {"width": 390, "height": 844}
SCREEN = {"width": 1920, "height": 1080}
UNACKED = ("active_unacked", "cleared_unacked", "latched_unacked")
SUPPRESSIBLE = ("formation.cell_temp", "formation.cell_dtdt")


@dataclass
class System:
    api: str
    db: str
    site: str
    user: str
    viewer_key: str
    broker: str
    secret: str


def _demo_copy(tmp: Path, site: str) -> Path:
    """The demo plant under a site code of its own (the broker may be shared with other runs)."""
    plant = (REPO_ROOT / "examples" / "demo-plant.yaml").read_text(encoding="utf-8")
    (tmp / "demo-plant.yaml").write_text(plant.replace("code: cz01", f"code: {site}", 1), encoding="utf-8")
    safety = yaml.safe_load((REPO_ROOT / "examples" / "demo-safety.yaml").read_text(encoding="utf-8"))
    (tmp / "demo-safety.yaml").write_text(yaml.safe_dump(safety, allow_unicode=True), encoding="utf-8")
    hazwaste = (REPO_ROOT / "examples" / "demo-hazwaste.yaml").read_text(encoding="utf-8")
    (tmp / "demo-hazwaste.yaml").write_text(hazwaste.replace("site: cz01", f"site: {site}"), encoding="utf-8")
    reports = (REPO_ROOT / "examples" / "demo-reports.yaml").read_text(encoding="utf-8")
    (tmp / "demo-reports.yaml").write_text(reports.replace("site: cz01", f"site: {site}"), encoding="utf-8")
    return tmp / "demo-plant.yaml"


@pytest.fixture(scope="module")
def system(
    pg_admin_url: str, template_db: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("pwa")
    name = f"ehs_pwa_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = with_dbname(pg_admin_url, name)
    site = f"p{uuid.uuid4().hex[:7]}"
    config = _demo_copy(tmp, site)
    with psycopg.connect(url) as conn:
        apply_full(conn=conn, full=load_full(config), source="e2e")
        with conn.transaction():
            for username in ("op", "mfa"):
                create_user(
                    conn=conn,
                    actor=console("e2e"),
                    username=username,
                    role=Role.OPERATOR,
                    sites=[site],
                    all_sites=False,
                    display_name="值班员",
                    password=PASSWORD,
                )
            _, key = create_key(
                conn=conn,
                actor=console("e2e"),
                name="control room",
                role=Role.VIEWER,
                sites=[site],
                all_sites=False,
                expires_at=None,
                now=datetime.now(UTC),
            )
    port = free_port("127.0.0.1")
    secret = uuid.uuid4().hex * 2
    env = {
        "EHS_DATABASE_URL": url,
        "EHS_MQTT_URL": broker_url,
        "EHS_DATA_DIR": str(tmp / "var"),
        "EHS_INGEST_CLIENT_ID": f"pwa-{uuid.uuid4().hex[:8]}",
        "EHS_ALERTS_CLIENT_ID": f"pwa-{uuid.uuid4().hex[:8]}",
        "EHS_INGEST_SESSION_EXPIRY_S": "60",
        "EHS_SECRET_KEY": secret,
    }
    procs = [
        spawn("ingest", env, tmp / "ingest.log"),
        spawn("alerts", env, tmp / "alerts.log"),
        spawn(
            "uvicorn",
            env,
            tmp / "api.log",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ),
        spawn("simulator", env, tmp / "simulator.log", "--config", str(config), "--speed", "5", "--dropout", "0"),
    ]
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(api), timeout=60, interval=0.2, message="the API to answer /healthz")
        yield System(api=api, db=url, site=site, user="op", viewer_key=key, broker=broker_url, secret=secret)
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for log in ("ingest", "alerts", "api", "simulator"):
        assert "Traceback" not in (tmp / f"{log}.log").read_text(), (tmp / f"{log}.log").read_text()[-3000:]


def _healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/healthz", timeout=2) as resp:  # noqa: S310 - local test server
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)", pytrace=False
        )
    from playwright.sync_api import sync_playwright

    RESULTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def _phone(browser, system: System):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN", base_url=system.api
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def _sign_in(page, system: System) -> None:
    page.goto("/app/")
    page.fill("#login [name=username]", system.user)
    page.fill("#login [name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector(".inbox h2")


def _alarm(system: System, alarm_id: int) -> dict:
    with psycopg.connect(system.db) as conn:
        cur = conn.execute("SELECT state, acked_at, acked_by FROM alarm WHERE id = %s", (alarm_id,))
        state, acked_at, acked_by = cur.fetchone()
    return {"state": state, "acked_at": acked_at, "acked_by": acked_by}


def _comments(system: System, alarm_id: int) -> list[str]:
    with psycopg.connect(system.db) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT cause FROM alarm_event WHERE alarm_id = %s AND kind = 'comment'", (alarm_id,))
        ]


def _post(system: System, path: str, body: dict, token: str | None = None) -> tuple[int, dict | None]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(
        f"{system.api}{path}", method="POST", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - local test server
        text = resp.read()
        return resp.status, json.loads(text) if text else None


def _token(system: System, username: str) -> str:
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"{system.api}/api/v1/auth/token", data=form, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read())["access_token"]


def _comment_as_operator(system: System, alarm_id: int, text: str) -> None:
    """Another client of the same operator comments: the alarm's version changes on the server."""
    status, _ = _post(system, f"/api/v1/alarms/{alarm_id}/comment", {"text": text}, _token(system, system.user))
    assert status == 201


def _unacked_ids(system: System, area: str | None = None) -> list[int]:
    """Unacknowledged alarms of the incident that stay acknowledgeable (the cell temperature alarms are suppressed
    by design once the runaway alarm of their cabinet is raised: demo-safety.yaml)."""
    with psycopg.connect(system.db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM alarm WHERE site = %s AND state = ANY(%s) AND rule <> ALL(%s) "
                "AND (%s::text IS NULL OR area = %s) ORDER BY priority DESC, id",
                (system.site, list(UNACKED), list(SUPPRESSIBLE), area, area),
            )
        ]


def _acknowledge(page, system: System, alarm_id: int, *, press: bool = True) -> None:
    """Press "acknowledge" on the open detail (or wait for a queued ack). The alarm may change between showing and
    pressing (the incident goes on): the app then shows the conflict with the new state, and the user acknowledges
    again."""
    if press:
        page.click("#ack")

    def done() -> bool:
        if _alarm(system, alarm_id)["acked_at"] is not None:
            return True
        retry = page.locator("[data-retry]")
        if retry.count():
            retry.first.click()
        return False

    wait_for(done, timeout=60, interval=0.5, message=f"the ack of alarm {alarm_id} on the server")


def test_installable_manifest_and_service_worker(browser, system: System) -> None:
    context, page, errors = _phone(browser, system)
    try:
        page.goto("/app/")
        page.wait_for_selector("#login")
        scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.active && r.scope)")
        assert scope == f"{system.api}/app/"
        href = page.get_attribute("link[rel=manifest]", "href")
        manifest = page.evaluate("href => fetch(href).then(r => r.json())", href)
        assert manifest["scope"] == "/app/" and manifest["start_url"].startswith("/app/")
        assert manifest["display"] == "standalone" and manifest["name"] and manifest["short_name"]
        assert {i["purpose"] for i in manifest["icons"]} == {"any", "maskable"}
        for icon in manifest["icons"]:
            size = page.evaluate(
                """src => new Promise((ok, fail) => {
                const img = new Image();
                img.onload = () => ok(`${img.naturalWidth}x${img.naturalHeight}`);
                img.onerror = fail;
                img.src = src; })""",
                icon["src"],
            )
            assert size == icon["sizes"], icon
        # the app shell is cached by the service worker: it loads with the network off
        page.wait_for_function("() => caches.keys().then(k => k.some(n => n.endsWith('-shell')))")
        context.set_offline(True)
        page.reload()
        page.wait_for_selector("#login")
        context.set_offline(False)
        assert not errors, errors
    finally:
        context.close()


def test_sign_in_with_a_second_factor(browser, system: System) -> None:
    token = _token(system, "mfa")
    _, setup = _post(system, "/api/v1/auth/mfa/setup", {}, token)
    totp = pyotp.TOTP(setup["secret"])
    # enrol with the previous step's code (one step of drift is accepted), sign in with the current one
    _post(system, "/api/v1/auth/mfa/enable", {"code": totp.at(datetime.now(UTC).timestamp() - 30)}, token)
    context, page, errors = _phone(browser, system)
    try:
        page.goto("/app/")
        page.fill("#login [name=username]", "mfa")
        page.fill("#login [name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#login [name=totp]")
        page.screenshot(path=str(RESULTS / "pwa-sign-in-totp-390x844.png"))
        page.fill("#login [name=totp]", totp.now())
        page.click("#login button[type=submit]")
        page.wait_for_selector(".inbox h2")
        assert not errors, errors
    finally:
        context.close()


def test_area_live_values_and_language_switch(browser, system: System) -> None:
    context, page, errors = _phone(browser, system)
    try:
        _sign_in(page, system)
        assert "告警" in page.inner_text("nav.bottom")
        # an area's values keep coming over the WebSocket after the page loaded them once
        page.click("nav.bottom a[data-tab=areas]")
        page.click("a.area >> nth=0")
        cell = page.locator("td.value[title]").first
        cell.wait_for(timeout=30_000)
        first_time = cell.get_attribute("title")
        page.wait_for_function(
            """([time]) => {
            const el = document.querySelector('td.value[title]'); return el && el.title !== time; }""",
            arg=[first_time],
            timeout=60_000,
        )
        page.screenshot(path=str(RESULTS / "pwa-area-390x844.png"))
        page.click("nav.bottom a[data-tab=settings]")
        # notification settings and Web Push, where the server offers them
        page.wait_for_selector("#push-toggle")
        page.select_option("#prefs [name=min_priority]", "3")
        page.fill("#prefs [name=quiet_start]", "22:00")
        page.fill("#prefs [name=quiet_end]", "07:00")
        page.click("#prefs button[type=submit]")
        page.wait_for_function("() => document.getElementById('prefs-saved').textContent.includes('✓')")
        with psycopg.connect(system.db) as conn:
            row = conn.execute(
                "SELECT s.min_priority, s.quiet_start, s.quiet_end FROM notification_settings s "
                "JOIN app_user u ON u.id = s.user_id WHERE u.username = 'op'"
            ).fetchone()
        assert row[0] == 3 and (str(row[1])[:5], str(row[2])[:5]) == ("22:00", "07:00"), row
        page.select_option("#lang", "en")
        page.wait_for_function("() => document.documentElement.lang === 'en'")
        assert "Alarms" in page.inner_text("nav.bottom")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(RESULTS / "pwa-settings-en-390x844.png"))
        assert not errors, errors
    finally:
        context.close()


def test_incident_inbox_ack_big_screen_and_offline_ack(browser, system: System) -> None:
    phone, page, errors = _phone(browser, system)
    wall = browser.new_context(viewport=SCREEN, base_url=system.api, locale="zh-CN")
    screen = wall.new_page()
    screen_errors: list[str] = []
    screen.on("pageerror", lambda exc: screen_errors.append(str(exc)))
    try:
        _sign_in(page, system)
        reply = send_control(system.broker, system.site, {"action": "start", "incident": "thermal_runaway"})
        assert reply["ok"], reply

        # the incident's alarms reach the inbox by themselves (live feed)
        page.wait_for_selector("a.alarm.unacked", timeout=240_000)
        wait_for(
            lambda: len(_unacked_ids(system)) >= 3,
            timeout=240,
            interval=0.5,
            message="three unacknowledged alarms of the incident",
        )
        page.wait_for_function("() => document.querySelectorAll('a.alarm.unacked').length >= 2", timeout=30_000)
        page.screenshot(path=str(RESULTS / "pwa-inbox-390x844.png"))
        first, second, third = _unacked_ids(system)[:3]

        # the big screen, with a viewer API key, shows it unacknowledged
        screen.goto(f"/screen/?token={system.viewer_key}")
        row = f"li.alarm[data-alarm-id='{first}']"
        screen.wait_for_selector(f"{row}.unacked", timeout=60_000)
        assert "token=" not in screen.url  # the key does not stay in the address bar

        # acknowledge on the phone; the screen follows through the live feed
        page.click(f"a.alarm[data-alarm-id='{first}']")
        page.wait_for_selector(f"article.detail[data-alarm-id='{first}'] #ack")
        page.wait_for_selector("#chart svg, #chart .muted:not(:empty)", timeout=30_000)
        page.screenshot(path=str(RESULTS / "pwa-detail-390x844.png"), full_page=True)
        _acknowledge(page, system, first)
        assert _alarm(system, first)["acked_by"] == "user:op"
        screen.wait_for_function(
            f"""() => {{ const el = document.querySelector("{row}");
            return !el || !{list(UNACKED)}.includes(el.dataset.state); }}""",
            timeout=60_000,
        )
        screen.screenshot(path=str(RESULTS / "screen-1920x1080.png"))

        # offline, the app and the recent alarms come from the service worker's caches
        phone.set_offline(True)
        page.goto("/app/#/alarms")
        page.reload()
        page.wait_for_selector(f"a.alarm[data-alarm-id='{second}']")
        assert "离线" in page.inner_text("#net")
        page.screenshot(path=str(RESULTS / "pwa-offline-inbox-390x844.png"))
        phone.set_offline(False)

        # offline: the ack is queued, then delivered when the network returns
        page.goto(f"/app/#/alarms/{second}")
        page.wait_for_selector(f"article.detail[data-alarm-id='{second}'] #ack")
        phone.set_offline(True)
        page.click("#ack")
        page.wait_for_selector("#queued")
        page.fill("#comment-form [name=text]", "离线备注 offline note")
        page.click("#comment-form button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('#queued span').length === 2")
        assert _alarm(system, second)["acked_at"] is None
        page.screenshot(path=str(RESULTS / "pwa-offline-queued-390x844.png"))
        phone.set_offline(False)
        # delivered (the page's "online" event), or, when the alarm changed meanwhile, shown as a conflict that
        # the user acknowledges again
        _acknowledge(page, system, second, press=False)
        assert _alarm(system, second)["acked_by"] == "user:op"
        wait_for(
            lambda: "离线备注 offline note" in _comments(system, second),
            timeout=30,
            message="the queued comment on the server",
        )

        # offline again, and the alarm changes on the server meanwhile: the conflict is shown, the user acks again
        page.goto(f"/app/#/alarms/{third}")
        page.wait_for_selector(f"article.detail[data-alarm-id='{third}'] #ack")
        phone.set_offline(True)
        page.click("#ack")
        page.wait_for_selector("#queued")
        _comment_as_operator(system, third, "changed while the phone was offline")
        phone.set_offline(False)
        page.wait_for_selector("[data-retry]", timeout=60_000)
        assert _alarm(system, third)["acked_at"] is None
        page.screenshot(path=str(RESULTS / "pwa-conflict-390x844.png"), full_page=True)
        _acknowledge(page, system, third, press=False)
        assert page.evaluate("import('/app/js/outbox.js').then(m => m.all()).then(a => a.length)") == 0
        assert not errors, errors
        assert not screen_errors, screen_errors
    finally:
        wall.close()
        phone.close()


def test_notification_link_acknowledges_without_sign_in(browser, system: System) -> None:
    """The link of a push notification (/app/#/alarms/<id>?t=<token>) opens the alarm and acknowledges it as the
    person it was sent to, without signing in."""
    reply = send_control(system.broker, system.site, {"action": "start", "incident": "electrolyte_leak"})
    assert reply["ok"], reply
    alarm_id = wait_for(
        lambda: _unacked_ids(system, area="injection")[:1],
        timeout=240,
        interval=0.5,
        message="an unacknowledged alarm of the leak",
    )[0]
    with psycopg.connect(system.db) as conn:
        user_id = conn.execute("SELECT id FROM app_user WHERE username = 'op'").fetchone()[0]
    token = links.make(
        system.secret, alarm_id=alarm_id, user_id=user_id, now=datetime.now(UTC), ttl=timedelta(minutes=30)
    )
    context, page, errors = _phone(browser, system)
    try:
        page.goto(f"/app/#/alarms/{alarm_id}?t={token}")
        page.click("#link-ack")
        wait_for(
            lambda: _alarm(system, alarm_id)["acked_at"] is not None, timeout=30, message="the ack through the link"
        )
        # the person the link was sent to (the link route records the bare user name, the alarm routes "user:op")
        assert _alarm(system, alarm_id)["acked_by"] == "user:op"
        page.wait_for_selector("#link-ack", state="detached")
        page.screenshot(path=str(RESULTS / "pwa-link-acked-390x844.png"))
        assert not errors, errors
    finally:
        context.close()
