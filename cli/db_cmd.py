"""``ehs db``: database administration (least-privilege roles for the services)."""

from __future__ import annotations

import os

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="Database roles.")


@app.command()
def roles(
    service_role: str = typer.Option("ehs_app", help="The role the services connect as"),
    password_env: str = typer.Option("", help="Environment variable holding its password (new role)"),
) -> None:
    """As the owner that runs migrations: create the services' role (when allowed) and grant it least privilege:
    read/write on the plant tables, SELECT and INSERT only on the audit record."""
    import psycopg

    from core.roles import check_service_role, setup_service_role

    password = os.environ.get(password_env) if password_env else None
    with database_url() as url, psycopg.connect(url) as conn:
        try:
            done = setup_service_role(conn, role=service_role, password=password)
        except (PermissionError, ValueError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        wrong = check_service_role(conn, role=service_role)
    for line in done:
        typer.echo(line)
    for line in wrong:
        typer.echo(f"  still wrong: {line}", err=True)
    if wrong:
        raise typer.Exit(1)
    typer.echo(f"run the services as {service_role} (EHS_DATABASE_URL) and the migrations as the owner")
