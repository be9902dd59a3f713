"""``ehs up``: the whole system in one process tree, on embedded defaults unless servers are configured.

Start order: database, broker, migrations, plant configuration, then the services as child processes
(ingest, API, simulator with ``--demo``). A child that dies is restarted with backoff, and said so; one in a
crash loop is given up with a clear message. Ctrl-C or SIGTERM stops the simulator first and ingest last (so it
commits what it holds), then the embedded broker and database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import typer

from cli.common import DEMO_PLANT, REPO_ROOT

#: Services that ``ehs up`` runs, in start order (stopped in reverse). Composition roots append to it.
SERVICES: list[tuple[str, list[str], bool]] = [
    # (name, arguments after `python -m`, demo only)
    ("ingest", ["ingest"], False),
    ("alerts", ["alerts"], False),
    (
        "api",
        [
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        False,
    ),
    ("simulator", ["simulator", "--config", "{config}", "--speed", "{speed}"], True),
    ("hj212", ["ingest.hj212"], False),  # only when EHS_HJ212_PORT is set (see below)
    ("compliance", ["compliance"], False),
    ("energy", ["energy"], False),  # counters -> intervals, ledgers, energy findings
]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    given_up: bool = False
    _fh: object = field(default=None, repr=False)

    def start(self) -> None:
        if self._fh is None:
            self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=REPO_ROOT, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started_at = time.monotonic()

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, child: Child, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own local URL
                if resp.status == 200:
                    return True
        time.sleep(0.2)
    return False


def up(
    demo: bool = typer.Option(False, "--demo", help="Apply the demo plant and run the simulator"),
    config: Path | None = typer.Option(None, help="Plant configuration to apply at start"),
    host: str = typer.Option("127.0.0.1", help="API address"),
    port: int = typer.Option(8000, help="API port (0, or a port that is taken: a free one is chosen)"),
    speed: float = typer.Option(1.0, help="With --demo: play incidents this many times faster"),
) -> None:
    """Run the whole system: database, broker, migrations, configuration, ingest, API (and the simulator)."""
    import psycopg

    from cli.plantfile import apply_full, load_full
    from core.db import redact_url
    from core.embedded import free_port, resolve_broker, resolve_database
    from core.logging import setup_logging
    from core.migrate import migrate
    from core.runtime import clear_runtime, write_runtime
    from core.settings import get_settings
    from core.yamlconf import ConfigError

    settings = get_settings()
    setup_logging(settings.log_level)
    data_dir = settings.data_dir.resolve()
    config = config or (DEMO_PLANT if demo else None)
    plant = None
    if config is not None:
        try:
            plant = load_full(config)
        except ConfigError as exc:
            typer.echo("Configuration refused:\n  " + "\n  ".join(exc.problems), err=True)
            raise typer.Exit(1) from None

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    db = resolve_database(settings.database_url, data_dir)
    broker = None
    children: list[Child] = []
    try:
        broker = resolve_broker(settings.mqtt_url, data_dir)
        report = migrate(db.url, settings=settings)
        if plant is not None:
            with psycopg.connect(db.url) as conn:
                summary = apply_full(conn=conn, full=plant, source=str(config))
        demo_password = _demo_admin(db.url) if demo else None
        if demo:
            _demo_notifications(db.url, settings.secret_key.get_secret_value())
            _demo_tariffs(db.url)
            _demo_carbon(db.url)
        if port == 0 or not _port_free(host, port):
            port = free_port(host)
        api_url = f"http://{host}:{port}"
        db_where = f"embedded pgserver, data in {data_dir / 'pgdata'}" if db.embedded else "configured"
        broker_where = f"embedded {broker.kind}" if broker.embedded else "configured"
        timescale = report.features
        typer.echo("ehs-monitor")
        typer.echo(f"  database : {redact_url(db.url)} ({db_where})")
        typer.echo(f"  broker   : {broker.url.split('@')[-1]} ({broker_where})")
        typer.echo(f"  TimescaleDB features: {timescale}")
        if plant is not None:
            revision = f"revision {summary.revision}" if summary.changed else "unchanged"
            typer.echo(
                f"  plant    : {config} ({revision}; {len(plant.safety.rules)} rules, "
                f"{len(plant.safety.response_plans)} response plans)"
            )

        env = {
            **os.environ,
            "EHS_DATABASE_URL": db.url,
            "EHS_MQTT_URL": broker.url,
            "EHS_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if demo:
            # the demo's chillers follow Changzhou's weather: in spring, when cooling starts, they run above last
            # weeks' profile without any waste, so the profile check leaves them to degree-day baselines
            env.setdefault("EHS_ENERGY_ABNORMAL_PROFILE_EXCLUDE", '["e-chiller"]')
        logs = data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        values = {"host": host, "port": str(port), "config": str(config), "speed": str(speed)}
        for name, args, demo_only in SERVICES:
            if (demo_only and not demo) or (name == "hj212" and not os.environ.get("EHS_HJ212_PORT")):
                continue
            argv = [sys.executable, "-m", *[a.format(**values) for a in args]]
            children.append(Child(name, argv, env, logs / f"{name}.log"))
        for child in children:
            child.start()
        api = next(c for c in children if c.name == "api")
        if not _wait_http(f"{api_url}/healthz", api):
            typer.echo(f"the API did not start; see {api.log}", err=True)
            raise typer.Exit(1)
        write_runtime(data_dir, {"database_url": db.url, "mqtt_url": broker.url, "api_url": api_url})
        typer.echo(f"  API      : {api_url}  (docs {api_url}/docs, latest values {api_url}/api/v1/latest)")
        typer.echo(f"  app      : {api_url}/app/  (phones)   control room: {api_url}/screen/")
        typer.echo(f"  logs     : {logs}")
        if demo:
            typer.echo(
                "  demo     : simulator running; try `ehs simulate incident thermal_runaway` "
                "in another terminal, then `ehs alarms list`"
            )
            typer.echo(
                f"  sign in  : user {DEMO_USER}, password {demo_password} (demo only: a new one-time "
                "password at every start)"
            )
            typer.echo(
                f"  notify   : demo channel writes every notification to {logs / 'alerts.log'} "
                "(no external service; add real channels with the API)"
            )
        typer.echo("Running. Press Ctrl-C to stop.")
        _supervise(children, stop)
    finally:
        typer.echo("Stopping...")
        for child in reversed(children):
            child.stop()
        clear_runtime(data_dir)
        if broker is not None:
            broker.stop()
        db.stop()
        typer.echo("Stopped.")


DEMO_USER = "demo"


def _demo_admin(url: str) -> str:
    """Create (or re-key) the demo administrator with a fresh one-time password; never a fixed default."""
    import getpass
    from datetime import UTC, datetime

    import psycopg

    from api.policy import Role, console
    from api.users import create_user, find_user_id, reset_password

    actor = console(getpass.getuser())
    with psycopg.connect(url) as conn, conn.transaction():
        user_id = find_user_id(conn, DEMO_USER)
        if user_id is None:
            return create_user(
                conn=conn,
                actor=actor,
                username=DEMO_USER,
                role=Role.ADMIN,
                sites=[],
                all_sites=True,
                display_name="Demo administrator",
            ).one_time_password
        return reset_password(conn=conn, actor=actor, user_id=user_id, password=None, now=datetime.now(UTC))


def _demo_notifications(url: str, secret: str) -> None:
    """A log-only notification channel and an escalation policy for the demo: notifications are visible
    without any external service, and no real token is ever shipped."""
    import psycopg

    from alerts.notifications import notify_config

    with psycopg.connect(url) as conn, conn.transaction():
        notify_config.apply_section(
            conn=conn,
            secret=secret,
            section=notify_config.NotificationSection(
                channels=[notify_config.ChannelSpec(name="demo-log", kind="log", url="log://demo")],
                escalation=[
                    notify_config.PolicySpec(
                        name="demo",
                        min_priority=3,
                        reminder_s=300,
                        max_reminders=3,
                        tiers=[
                            notify_config.TierSpec(after_s=300, roles=["ehs_manager"], channels=["webpush"]),
                            notify_config.TierSpec(after_s=900, roles=["admin"], channels=["webpush", "sms"]),
                        ],
                    )
                ],
            ),
        )


def _demo_tariffs(url: str) -> None:
    """The Jiangsu time-of-use tariff (demo data, standards.md 6.3) for every site that has no electricity tariff,
    so that the demo's ledgers show cost and peak/valley shares."""
    import psycopg

    from energy.tariffs import DEFAULT_TARIFF, load_tariff_file, save_tariff

    spec = load_tariff_file(DEFAULT_TARIFF)
    with psycopg.connect(url) as conn, conn.transaction():
        for (site_id,) in conn.execute("""SELECT s.id FROM site s WHERE NOT EXISTS (SELECT 1 FROM energy_tariff t
                                          WHERE t.site_id = s.id AND t.medium = 'electricity')""").fetchall():
            save_tariff(conn=conn, site_id=site_id, spec=spec, actor="demo")


def _demo_carbon(url: str) -> None:
    """The shipped carbon factor library (imported and made active when no library is stored yet) and, for the
    demo plant's sites that have no routing yet, the demo LFP routing and the demo plant's factor regions
    (Changzhou: Jiangsu, East China grid). Idempotent: what is there is kept."""
    import psycopg

    from carbon import service
    from carbon.factors import DATA_DIR, load_library
    from carbon.footprint import demo_routing
    from core.plant import load_plant

    demo_sites = [s.code for s in load_plant(DEMO_PLANT).sites]
    with psycopg.connect(url) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM carbon_factor_set LIMIT 1").fetchone() is None:
            service.import_library(conn=conn, library=load_library(DATA_DIR), actor="demo", activate=True)
        for site_id, code in conn.execute(
            """SELECT s.id, s.code FROM site s WHERE s.code = ANY(%s)
               AND NOT EXISTS (SELECT 1 FROM carbon_routing r WHERE r.site_id = s.id) ORDER BY s.id""",
            (demo_sites,),
        ).fetchall():
            service.set_routing(conn=conn, site=code, routing=demo_routing(), actor="demo")
            if conn.execute("SELECT 1 FROM carbon_site_setting WHERE site_id = %s", (site_id,)).fetchone() is None:
                service.set_site(conn=conn, site=code, actor="demo", province="jiangsu", grid_region="east")


#: A child that exits this many times in a row, each time within ``HEALTHY_AFTER_S`` of its start, is in a crash
#: loop: ``ehs up`` stops restarting it and says so (the other services keep running; the alerts worker raises
#: the ``service.silent`` alarm for a dead ingest, and ingest does for a dead alerts worker).
CRASH_LOOP_RESTARTS = 5
HEALTHY_AFTER_S = 300.0


def _supervise(
    children: list[Child],
    stop: threading.Event,
    *,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    give_up_after: int = CRASH_LOOP_RESTARTS,
    healthy_after: float = HEALTHY_AFTER_S,
    poll_s: float = 0.5,
) -> None:
    """Restart a child that exits, with exponential backoff (``base_delay`` doubling to ``max_delay``); give up
    on a child in a crash loop."""
    while not stop.wait(poll_s):
        now = time.monotonic()
        for child in children:
            if child.proc is None or child.proc.poll() is None or child.given_up:
                continue
            if child.next_start == 0.0:
                if now - child.started_at > healthy_after:  # it ran fine for a while: start the backoff afresh
                    child.restarts = 0
                if child.restarts >= give_up_after:
                    child.given_up = True
                    typer.echo(
                        f"  {child.name} exited with code {child.proc.returncode} again: it failed "
                        f"{child.restarts + 1} times in a row, each within {healthy_after:.0f} s of its start. "
                        f"Not restarting it; fix the cause (see {child.log}) and run `ehs up` again. "
                        f"{SAFETY_NOTE.get(child.name, '')}".rstrip(),
                        err=True,
                    )
                    continue
                delay = min(max_delay, base_delay * 2.0**child.restarts)
                typer.echo(
                    f"  {child.name} exited with code {child.proc.returncode}; restarting it in "
                    f"{delay:.0f} s (restart {child.restarts + 1} of at most {give_up_after} in a row; "
                    f"log: {child.log})",
                    err=True,
                )
                child.next_start = now + delay
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()
                typer.echo(f"  {child.name} restarted (pid {child.proc.pid})", err=True)


SAFETY_NOTE = {
    "ingest": "WARNING: without ingest no reading is stored, no rule runs and no interlock fires.",
    "alerts": "WARNING: without the alerts worker no notification is sent and no command is retried.",
}
