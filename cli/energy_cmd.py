"""``ehs energy``: refresh the intervals, print a ledger, import offline readings or production, load a tariff,
evaluate the energy findings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import typer

from cli import energy_abnormal_cmd
from cli.common import database_url
from core.yamlconf import ConfigError
from energy import exports, jobs, offline
from energy.ledger import BUCKETS, BYS, LedgerError, ledger
from energy.tariffs import DEFAULT_TARIFF, load_tariff_file, save_tariff

app = typer.Typer(help="Energy: intervals, ledgers, tariffs, offline meters.", no_args_is_help=True)
app.add_typer(energy_abnormal_cmd.app, name="abnormal")


def _site_id(conn: psycopg.Connection, site: str) -> int:
    row = conn.execute("SELECT id FROM site WHERE code = %s", (site,)).fetchone()
    if row is None:
        typer.echo(f"no site {site!r}", err=True)
        raise typer.Exit(2)
    return row[0]


def _when(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        typer.echo(f"--{name}: {text!r} is not an ISO 8601 time", err=True)
        raise typer.Exit(2) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("refresh")
def refresh_cmd(site: str | None = typer.Option(None, help="Only this site")) -> None:
    """Turn new and late counter readings into 15-minute intervals and days (what `python -m energy` does)."""
    with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
        done = jobs.refresh(conn, now=datetime.now(UTC), site=site)
    typer.echo(json.dumps(done.as_dict()))


@app.command("ledger")
def ledger_cmd(
    site: str = typer.Argument(..., help="Site code"),
    start: str = typer.Option(..., help="ISO 8601 start (UTC if no offset)"),
    end: str = typer.Option(..., help="ISO 8601 end (UTC if no offset)"),
    by: str = typer.Option("area", help=" | ".join(BYS)),
    bucket: str = typer.Option("day", help=" | ".join(BUCKETS)),
    medium: str | None = typer.Option(None, help="Only this medium"),
    output: Path | None = typer.Option(None, help="Write CSV (.csv) or XLSX (.xlsx) instead of JSON lines"),
) -> None:
    """Print a ledger (one JSON object a row) or write it as CSV/XLSX."""
    with database_url() as url, psycopg.connect(url) as conn:
        try:
            rows = ledger(
                conn, site=site, start=_when(start, "start"), end=_when(end, "end"), bucket=bucket, by=by, medium=medium
            )
        except LedgerError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        tz = conn.execute("SELECT timezone FROM site WHERE code = %s", (site,)).fetchone()[0]
    if output is None:
        for r in rows:
            typer.echo(json.dumps(r.as_dict(), ensure_ascii=False))
        return
    data = exports.ledger_xlsx(rows, tz) if output.suffix.lower() == ".xlsx" else exports.ledger_csv(rows, tz)
    output.write_bytes(data)
    typer.echo(f"{len(rows)} rows -> {output}")


@app.command("import-offline")
def import_offline_cmd(
    site: str = typer.Argument(..., help="Site code"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX with columns meter, time, value"),
    production: bool = typer.Option(False, help="The file holds production (area, start, end, quantity, unit)"),
    actor: str = typer.Option("console", help="Who imports (audit)"),
) -> None:
    """Import offline meter readings (or production figures); refused whole, naming line and field."""
    data = file.read_bytes()
    with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
        site_id = _site_id(conn, site)
        try:
            if production:
                typer.echo(
                    json.dumps(
                        {
                            "stored": offline.import_production(
                                conn, site_id=site_id, data=data, filename=file.name, actor=f"cli:{actor}"
                            )
                        }
                    )
                )
                return
            result = offline.import_offline(conn, site_id=site_id, data=data, filename=file.name, actor=f"cli:{actor}")
        except offline.ImportRefused as exc:
            for problem in exc.problems:
                typer.echo(problem, err=True)
            raise typer.Exit(1) from None
    typer.echo(json.dumps({"rows": result.rows, "stored": result.stored, "meters": result.meters}))


@app.command("tariff-load")
def tariff_load_cmd(
    site: str = typer.Argument(..., help="Site code"),
    file: Path = typer.Argument(DEFAULT_TARIFF, help="Tariff YAML (default: the Jiangsu 2024 time-of-use demo tariff)"),
    actor: str = typer.Option("console", help="Who loads it"),
) -> None:
    """Create or replace a tariff of a site from a YAML file."""
    try:
        spec = load_tariff_file(file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
        tariff_id = save_tariff(conn=conn, site_id=_site_id(conn, site), spec=spec, actor=f"cli:{actor}")
    typer.echo(json.dumps({"tariff": spec.code, "id": tariff_id}))


@app.command("evaluate")
def evaluate_cmd() -> None:
    """Refresh, then evaluate the energy findings of every site and raise or clear their alarms (once)."""
    from energy.__main__ import run_once

    with database_url() as url, psycopg.connect(url, autocommit=True) as conn:
        done, findings = run_once(conn, now=datetime.now(UTC))
    for f in findings:
        typer.echo(f"{f.severity!s:8} {f.rule:16} {f.subject.key}  {f.message}")
    typer.echo(json.dumps({**done.as_dict(), "findings": len(findings)}))
