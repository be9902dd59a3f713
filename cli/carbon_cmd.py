"""``ehs carbon``: import and list factor libraries, set a site's region, show, close and recalculate period
ledgers, claim green certificates from a CSV, set the routing and print a batch's footprint declaration."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="Carbon: factors, ledgers, certificates, routing and footprints.")
factors_app = typer.Typer(no_args_is_help=True, help="The emission-factor library (versioned CSV data).")
app.add_typer(factors_app, name="factors")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _run(work: Callable[[Any], Any]) -> Any:
    """Run ``work(conn)`` in one transaction; refusals are printed with their reason and exit with status 2."""
    import psycopg

    from carbon.factors import FactorFileError
    from carbon.service import CarbonError
    from carbon.sources import SourceUnavailable

    try:
        with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
            return work(conn)
    except FactorFileError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None
    except (CarbonError, SourceUnavailable) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@factors_app.command("import")
def factors_import(
    directory: Path = typer.Argument(
        None, help="Folder with VERSION and the CSV files (default: the shipped carbon/data)"
    ),
    activate: bool = typer.Option(True, help="Make it the library open periods use"),
) -> None:
    """Import a factor library; every problem is printed as FILE:LINE: FIELD: message."""
    from carbon import service
    from carbon.factors import DATA_DIR, load_library

    def work(conn):
        lib = load_library(directory or DATA_DIR)
        created = service.import_library(conn=conn, library=lib, actor=_actor(), activate=activate)
        return lib, created

    lib, created = _run(work)
    typer.echo(
        f"factor library {lib.version}: {len(lib.factors)} rows, sha256 {lib.sha256[:16]} "
        f"({'imported' if created else 'already stored'}{', active' if activate else ''})"
    )


@factors_app.command("list")
def factors_list() -> None:
    """The stored library versions."""
    from carbon import service

    for v in _run(lambda conn: service.versions(conn=conn)):
        typer.echo(
            f"{v['version']:12} {'active' if v['active'] else '      '} {v['rows']:4} rows  "
            f"{v['imported_at']:%Y-%m-%d %H:%M}  {v['imported_by']}  {v['sha256'][:16]}"
        )


@app.command()
def site(
    code: str,
    province: str | None = typer.Option(None, help="Province code of the factor library (jiangsu, guangdong ...)"),
    grid_region: str | None = typer.Option(None, help="Regional grid (east, south, north ...)"),
    lag: int = typer.Option(2, help="Years between accounting year and factor data year"),
    vintage_years: int = typer.Option(
        1, help="How many years older than the accounting year a green certificate may be"
    ),
    steam_gj_per_t: float = typer.Option(2.8, help="GJ per tonne of purchased steam"),
    gwp: str = typer.Option("AR6", help="AR5 or AR6"),
) -> None:
    """Set a site's region and accounting rules (audited)."""
    from carbon import service

    _run(
        lambda conn: service.set_site(
            conn=conn,
            site=code,
            actor=_actor(),
            province=province,
            grid_region=grid_region,
            factor_lag_years=lag,
            vintage_years=vintage_years,
            steam_gj_per_t=steam_gj_per_t,
            gwp_basis=gwp,
        )
    )
    typer.echo(f"{code}: regions {', '.join(r for r in (province, grid_region, 'CN') if r)}, lag {lag} years")


@app.command()
def ledger(
    site_code: str = typer.Argument(..., metavar="SITE"),
    period: str = typer.Argument(..., help="YYYY or YYYY-MM"),
    as_json: bool = typer.Option(False, "--json", help="The whole ledger as JSON"),
) -> None:
    """Show a period's ledger (frozen when closed) from the energy ledgers."""
    from carbon import service
    from carbon.sources import energy_ledger_source

    led = _run(lambda conn: service.ledger(conn=conn, site=site_code, period=period, source=energy_ledger_source))
    if as_json:
        _echo(led)
        return
    t = led["totals"]
    typer.echo(
        f"{site_code} {period}  factors {led['factor_version']}  "
        f"{'closed rev ' + str(led['revision']) if led['closed'] else 'open'}"
    )
    typer.echo(
        f"scope 1 {t['scope1_kg'] / 1000:.3f} t  scope 2 location {t['scope2_location_kg'] / 1000:.3f} t  "
        f"market {t['scope2_market_kg'] / 1000:.3f} t  offsets beside {led['offsets']['tco2e']:.3f} t"
    )


@app.command()
def close(site_code: str = typer.Argument(..., metavar="SITE"), period: str = typer.Argument(...)) -> None:
    """Close a period: freeze its ledger with today's factors."""
    from carbon import service
    from carbon.sources import energy_ledger_source

    led = _run(
        lambda conn: service.close_period(
            conn=conn, site=site_code, period=period, source=energy_ledger_source, actor=_actor()
        )
    )
    typer.echo(f"{site_code} {period} closed (revision 1, factors {led['factor_version']})")


@app.command()
def recalculate(
    site_code: str = typer.Argument(..., metavar="SITE"),
    period: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (recorded in the audit record)"),
) -> None:
    """Recalculate a closed period as its next revision with the active factors."""
    from carbon import service
    from carbon.sources import energy_ledger_source

    led = _run(
        lambda conn: service.recalculate(
            conn=conn, site=site_code, period=period, source=energy_ledger_source, actor=_actor(), reason=reason
        )
    )
    typer.echo(f"{site_code} {period} revision {led['revision']} (factors {led['factor_version']})")


@app.command()
def certificates(
    site_code: str = typer.Argument(..., metavar="SITE"), file: Path = typer.Argument(..., exists=True, dir_okay=False)
) -> None:
    """Claim green certificates from a CSV (carbon.imports.COLUMNS); all rows or none."""
    from carbon import service
    from carbon.imports import parse_certificates
    from carbon.service import CarbonError

    def work(conn):
        ids = []
        for r in parse_certificates(file.read_text(encoding="utf-8-sig")):
            try:
                ids.append(
                    service.add_certificates(
                        conn=conn,
                        site=site_code,
                        scheme=r.scheme,
                        serial_prefix=r.serial_prefix,
                        serial_first=r.serial_first,
                        serial_last=r.serial_last,
                        vintage_year=r.vintage_year,
                        period_start=r.period_start,
                        period_end=r.period_end,
                        reference=r.reference,
                        actor=_actor(),
                    )
                )
            except CarbonError as exc:
                raise CarbonError(f"{file.name}:{r.line}: {exc}") from None
        return ids

    typer.echo(f"{len(_run(work))} certificate blocks claimed")


@app.command()
def routing(
    site_code: str = typer.Argument(..., metavar="SITE"),
    file: Path | None = typer.Argument(None, exists=True, dir_okay=False, help="YAML routing"),
    demo: bool = typer.Option(False, help="The demo plant's LFP routing"),
) -> None:
    """Set the site's process graph from a YAML file (or the demo routing)."""
    from carbon import service
    from carbon.footprint import Routing, demo_routing
    from core.yamlconf import ConfigError, load_model

    if demo == (file is not None):
        typer.echo("give a YAML file or --demo", err=True)
        raise typer.Exit(2)
    try:
        spec = demo_routing() if demo else load_model(file, Routing)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None
    _run(lambda conn: service.set_routing(conn=conn, site=site_code, routing=spec, actor=_actor()))
    typer.echo(f"{site_code}: routing of {len(spec.processes)} processes: {' -> '.join(spec.order())}")


@app.command()
def footprint(
    site_code: str = typer.Argument(..., metavar="SITE"),
    batch: str = typer.Argument(...),
    basis: str = typer.Option("location", help="location or market"),
) -> None:
    """Print a batch's product footprint declaration (JSON)."""
    from carbon import service
    from carbon.sources import energy_ledger_source

    _echo(
        _run(
            lambda conn: service.batch_footprint(
                conn=conn, site=site_code, batch=batch, source=energy_ledger_source, basis=basis
            )
        )
    )
