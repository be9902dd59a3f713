"""``ehs config``: validate, apply and export the plant configuration."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import database_url
from core.yamlconf import ConfigError

app = typer.Typer(
    no_args_is_help=True,
    help="Plant configuration (sites, areas, devices, points, meters, rules, alarms, actuators, response plans).",
)


def _load(path: Path):
    from cli.plantfile import load_full

    try:
        return load_full(path)
    except ConfigError as exc:
        typer.echo(f"Configuration refused ({len(exc.problems)} problem(s)):", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None


@app.command()
def check(file: Path) -> None:
    """Validate a configuration file (and the files it includes) without touching the database."""
    full = _load(file)
    points = sum(len(d.points) for s in full.plant.sites for a in s.areas for d in a.devices)
    typer.echo(
        f"{file}: valid ({len(full.plant.sites)} site(s), {points} points, {len(full.safety.rules)} rules, "
        f"{len(full.safety.actuators)} actuator entries, {len(full.safety.response_plans)} response plans)"
    )


@app.command()
def apply(file: Path) -> None:
    """Apply a configuration file to the database (idempotent: unchanged items are not touched)."""
    import getpass

    import psycopg

    from api.safety import ACTION
    from cli.plantfile import apply_full
    from core import audit
    from core.migrate import migrate

    full = _load(file)
    with database_url() as url:
        migrate(url)
        with psycopg.connect(url) as conn:
            summary = apply_full(conn=conn, full=full, source=str(file))
            if summary.changed:  # in the same transaction: the audit record names who changed what
                audit.append(
                    conn,
                    actor=f"cli:{getpass.getuser()}",
                    action=ACTION,
                    target=str(file),
                    detail={
                        "revision": summary.revision,
                        "sites": [site.code for site in full.plant.sites],
                        "changes": summary.registry.as_dict(),
                        "rules_revision": summary.rules_revision,
                        "alarms_revision": summary.alarms_revision,
                        "report_schedules": summary.report_schedules,
                    },
                )
    if not summary.changed:
        typer.echo(f"{file}: no changes")
        return
    parts = [
        f"{verb} {', '.join(f'{n} {table}' for table, n in counts.items())}"
        for verb, counts in summary.registry.as_dict().items()
        if counts
    ]
    if summary.rules_revision:
        parts.append(f"rule set {summary.rules_revision}")
    if summary.alarms_revision:
        parts.append(f"alarm configuration {summary.alarms_revision}")
    if summary.compliance_revision:
        parts.append(f"compliance configuration {summary.compliance_revision}")
    for verb, names in (("report schedules put", "put"), ("report schedules disabled", "disabled")):
        if summary.report_schedules[names]:
            parts.append(f"{verb}: {', '.join(summary.report_schedules[names])}")
    typer.echo(f"{file}: revision {summary.revision}: {'; '.join(parts)}")


@app.command()
def export(
    site: str | None = typer.Option(None, help="Only this site"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout"),
) -> None:
    """Export the active registry as a configuration file."""
    import psycopg

    from core.plant import dump_yaml, export_plant

    with database_url() as url, psycopg.connect(url) as conn:
        text = dump_yaml(export_plant(conn=conn, site=site))
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
