"""``ehs audit``: check the tamper-evident audit record, and anchor its head outside the database."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="The hash-chained audit record.")


def _anchor_dir():
    from core.settings import get_settings

    return get_settings().data_dir / "audit"


@app.command()
def verify() -> None:
    """Walk the audit chain and compare it with the signed heads in the data directory; name every edited,
    deleted or reordered entry (exit code 1 if any). The answer does not depend on the session's time zone."""
    import psycopg

    from core import audit

    with database_url() as url, psycopg.connect(url) as conn:
        checked, problems = audit.verify(conn)
        problems += audit.check_anchors(conn, _anchor_dir())
    for problem in problems:
        typer.echo(f"  {problem.kind:10} seq {problem.seq}: {problem.message}", err=True)
    if problems:
        typer.echo(f"audit record TAMPERED: {len(problems)} problem(s) in {checked} entries", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit record intact: {checked} entries")


@app.command()
def anchor() -> None:
    """Write the signed head of the chain to the data directory (audit/head.json, audit/daily/DAY.json); the
    alerts worker does this periodically, cron may too."""
    import psycopg

    from core import audit

    with database_url() as url, psycopg.connect(url) as conn:
        signed = audit.anchor(conn, _anchor_dir(), now=datetime.now(UTC))
    typer.echo(f"anchored seq {signed['seq']} {signed['hash'][:16]}... in {_anchor_dir()}")
