"""The ``ehs`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import typer

from cli import (
    alarms_cmd,
    audit_cmd,
    bench,
    carbon_cmd,
    config_cmd,
    db_cmd,
    detectors_cmd,
    devices_cmd,
    energy_cmd,
    eval_cmd,
    fuzz_cmd,
    hazwaste_cmd,
    hj212_cmd,
    keys_cmd,
    notify_cmd,
    reports_cmd,
    simulate_cmd,
    up,
    users_cmd,
)
from cli.common import REPO_ROOT, database_url

warnings.filterwarnings("ignore", module="platformdirs")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="ehs-monitor: safety, environment and energy monitoring for battery factories.",
)
app.command("up")(up.up)
app.add_typer(config_cmd.app, name="config")
app.add_typer(simulate_cmd.app, name="simulate")
app.add_typer(bench.app, name="bench")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(detectors_cmd.app, name="detectors")
app.add_typer(users_cmd.app, name="users")
app.add_typer(alarms_cmd.app, name="alarms")
app.add_typer(notify_cmd.app, name="notify")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(devices_cmd.app, name="devices")
app.add_typer(hj212_cmd.app, name="hj212")
app.command("fuzz")(fuzz_cmd.fuzz)
app.add_typer(db_cmd.app, name="db")
app.add_typer(reports_cmd.app, name="reports")
app.add_typer(hazwaste_cmd.app, name="hazwaste")
app.add_typer(carbon_cmd.app, name="carbon")
app.add_typer(energy_cmd.app, name="energy")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    from core.migrate import migrate as run
    from core.settings import get_settings

    with database_url() as url:
        report = run(url, settings=get_settings())
    typer.echo(
        f"{len(report.applied)} migration(s) applied ({', '.join(report.applied) or 'none'}), "
        f"{report.already} already applied; TimescaleDB {report.features}"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Run the test suite (extra arguments go to pytest); installs the Debian packages the tests need first."""
    from cli.provision import provision

    provision(typer.echo)
    code = subprocess.call([sys.executable, "-m", "pytest", *ctx.args], cwd=REPO_ROOT, env=os.environ.copy())
    raise typer.Exit(code)


def main() -> None:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path.home() / ".cache"))
    app()


if __name__ == "__main__":
    main()
