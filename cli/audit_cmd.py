"""``ehs audit``: check the tamper-evident audit record."""

from __future__ import annotations

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="The hash-chained audit record.")


@app.command()
def verify() -> None:
    """Walk the audit chain; name every edited, deleted or reordered entry (exit code 1 if any)."""
    import psycopg

    from core import audit

    with database_url() as url, psycopg.connect(url) as conn:
        checked, problems = audit.verify(conn)
    for problem in problems:
        typer.echo(f"  {problem.kind:9} seq {problem.seq}: {problem.message}", err=True)
    if problems:
        typer.echo(f"audit record TAMPERED: {len(problems)} problem(s) in {checked} entries", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit record intact: {checked} entries")
