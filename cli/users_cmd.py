"""``ehs users``: create the first administrator and manage accounts from the server's console (audited)."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime

import typer

from cli.common import database_url, print_table

app = typer.Typer(no_args_is_help=True, help="User accounts of the API (the first administrator starts here).")


def _console():
    from api.policy import console

    return console(getpass.getuser())


def _user_id(conn, username: str) -> int:
    from api.users import find_user_id

    user_id = find_user_id(conn, username)
    if user_id is None:
        typer.echo(f"no user {username!r}", err=True)
        raise typer.Exit(1)
    return user_id


def _run(action):
    """Run ``action(conn)`` in one transaction; turn API errors into a message and exit code 1."""
    import psycopg

    from api.errors import ApiError

    try:
        with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
            return action(conn)
    except ApiError as exc:
        typer.echo(f"refused: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _new_password(generate: bool) -> str | None:
    if generate:
        return None
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n") or None
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command()
def add(
    username: str,
    role: str = typer.Option(..., help="admin, ehs_manager, operator, viewer or regulator"),
    site: list[str] = typer.Option([], "--site", help="Site code (repeat for several)"),
    all_sites: bool = typer.Option(False, "--all-sites", help="Every site, present and future"),
    display_name: str = typer.Option("", help="Name shown in the app"),
    generate: bool = typer.Option(False, "--generate", help="Generate a one-time password and print it"),
) -> None:
    """Create a user (prompts for the password, reads it from stdin, or generates one with --generate)."""
    from api.policy import Role
    from api.users import create_user

    try:
        role_value = Role(role)
    except ValueError:
        typer.echo(f"unknown role {role!r}", err=True)
        raise typer.Exit(2) from None
    password = _new_password(generate)
    new = _run(
        lambda conn: create_user(
            conn=conn,
            actor=_console(),
            username=username,
            role=role_value,
            sites=site,
            all_sites=all_sites,
            display_name=display_name,
            password=password,
        )
    )
    typer.echo(f"user {username.lower()} created ({role}, {'all sites' if all_sites else ', '.join(site)})")
    if new.one_time_password:
        typer.echo(f"one-time password: {new.one_time_password}")


@app.command("list")
def list_users() -> None:
    """List users with role, sites and status."""
    from api.users import list_users as query

    rows = _run(lambda conn: query(conn=conn, actor=_console(), after=None, limit=1000))["items"]
    table = []
    for r in rows:
        status = (
            "disabled"
            if r["disabled_at"]
            else ("locked" if r["locked_until"] and r["locked_until"] > datetime.now(UTC) else "active")
        )
        sites = "*" if r["all_sites"] else ",".join(r["sites"])
        table.append([r["username"], r["role"], status, "on" if r["mfa_enabled"] else "off", sites])
    print_table(["user", "role", "status", "mfa", "sites"], table)


def _set_disabled(username: str, disabled: bool) -> None:
    from api.users import update_user

    _run(
        lambda conn: update_user(
            conn=conn,
            actor=_console(),
            user_id=_user_id(conn, username),
            changes={"disabled": disabled},
            now=datetime.now(UTC),
        )
    )
    typer.echo(f"user {username} {'disabled' if disabled else 'enabled'}")


@app.command()
def disable(username: str) -> None:
    """Disable a user (their sessions end at once)."""
    _set_disabled(username, True)


@app.command()
def enable(username: str) -> None:
    """Enable a disabled user."""
    _set_disabled(username, False)


@app.command("reset-mfa")
def reset_mfa(username: str) -> None:
    """Turn off a user's two-factor authentication (a lost phone); their sessions end."""
    from api.users import reset_mfa as reset

    _run(lambda conn: reset(conn=conn, actor=_console(), user_id=_user_id(conn, username), now=datetime.now(UTC)))
    typer.echo(f"two-factor authentication of {username} turned off")


@app.command("reset-password")
def reset_password(username: str, generate: bool = typer.Option(False, "--generate")) -> None:
    """Set a new password (prompted, from stdin, or generated with --generate); sessions end."""
    from api.users import reset_password as reset

    password = _new_password(generate)
    generated = _run(
        lambda conn: reset(
            conn=conn, actor=_console(), user_id=_user_id(conn, username), password=password, now=datetime.now(UTC)
        )
    )
    typer.echo(f"password of {username} reset")
    if generated:
        typer.echo(f"one-time password: {generated}")


@app.command()
def unlock(username: str) -> None:
    """Lift a lockout after repeated failed logins."""
    from api.users import unlock as lift

    _run(lambda conn: lift(conn=conn, actor=_console(), user_id=_user_id(conn, username)))
    typer.echo(f"user {username} unlocked")
