"""``ehs keys``: rotation of the service secret (``EHS_SECRET_KEY``); see README, "Rotating the secret"."""

from __future__ import annotations

import getpass

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="Rotation of the service secret: re-seal stored secrets.")


@app.command()
def reseal() -> None:
    """Seal every stored secret (channel URLs, the VAPID key, TOTP seeds) again under EHS_SECRET_KEY, reading
    them with EHS_SECRET_KEY or any of EHS_SECRET_KEY_PREVIOUS; one transaction, audited. Afterwards the previous
    secrets are no longer needed to read them."""
    import psycopg

    from core import audit, keys
    from core.settings import get_settings

    settings = get_settings()
    ring = settings.keyring
    try:
        with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
            done = keys.reseal_all(conn, ring)
            audit.append(
                conn,
                actor=f"cli:{getpass.getuser()}",
                action="keys.reseal",
                target="sealed-secrets",
                detail={"resealed": done, "previous_secrets": len(ring.previous)},
            )
    except keys.SealError as exc:
        typer.echo(f"refused, nothing changed: {exc}", err=True)
        raise typer.Exit(1) from None
    for name, n in done.items():
        typer.echo(f"{name}: {n} re-sealed")
    typer.echo(f"every sealed secret now opens with EHS_SECRET_KEY alone ({sum(done.values())} re-sealed)")
