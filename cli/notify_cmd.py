"""``ehs notify``: notification channels from the server's console: list (redacted), add, send a test message."""

from __future__ import annotations

import os

import typer

from cli.common import database_url

app = typer.Typer(no_args_is_help=True, help="Notification channels (WeCom, DingTalk, Feishu, e-mail, SMS webhook).")


@app.command("channels")
def channels() -> None:
    """List the channels; their URLs only redacted (the secrets never leave the database unsealed)."""
    import psycopg

    from alerts.notifications import notify_config

    with database_url() as url, psycopg.connect(url) as conn:
        for c in notify_config.list_channels(conn=conn):
            state = "on" if c["enabled"] else "off"
            failing = f", failing x{c['failures']}" if c["failures"] else ""
            typer.echo(
                f"{c['id']:>4}  {c['name']:<24} {c['kind']:<9} {state:<3} {c['url']}  site={c['site'] or '*'} "
                f"area={c['area'] or '*'}  {c['rate_per_s'] * 60:g}/min burst {c['burst']:g}{failing}"
            )


@app.command("add")
def add(
    name: str,
    kind: str = typer.Argument(..., help="wecom, dingtalk, feishu, email, sms, webhook, log"),
    url_env: str = typer.Option(
        ...,
        help="Name of the environment variable holding the apprise URL (a URL "
        "on the command line would stay in the shell history)",
    ),
    site: str | None = typer.Option(None),
    area: str | None = typer.Option(None),
    drills: bool = typer.Option(True, help="May receive drill messages"),
) -> None:
    """Add (or replace, by name) a channel; the URL is sealed with a key derived from EHS_SECRET_KEY."""
    import psycopg
    from pydantic import ValidationError

    from alerts.models import AlarmError
    from alerts.notifications import notify_config
    from core.settings import get_settings

    url = os.environ.get(url_env)
    if not url:
        typer.echo(f"${url_env} is not set", err=True)
        raise typer.Exit(2)
    try:
        spec = notify_config.ChannelSpec(name=name, kind=kind, url=url, site=site, area=area, drills=drills)
        with database_url() as db, psycopg.connect(db) as conn, conn.transaction():
            out = notify_config.put_channel(conn=conn, secret=get_settings().keyring, spec=spec)
    except (ValidationError, AlarmError) as exc:
        typer.echo(f"refused: {exc}".splitlines()[0], err=True)
        raise typer.Exit(1) from None
    typer.echo(f"channel {out['id']} {out['name']}: {out['url']}")


@app.command("test")
def test(name: str, to: str | None = typer.Option(None, help="Address for e-mail / SMS channels")) -> None:
    """Send a test message over one channel now and print the provider's answer."""
    import psycopg

    from alerts import store
    from alerts.notifications.notify import AppriseNotifier
    from alerts.seal import SealError, unseal
    from alerts.settings import AlertSettings
    from core.settings import get_settings

    with database_url() as db, psycopg.connect(db) as conn:
        channel = store.fetch_one(conn, "SELECT * FROM notification_channel WHERE name = %s", (name,))
    if channel is None:
        typer.echo(f"no channel {name!r}", err=True)
        raise typer.Exit(1)
    try:
        url = unseal(get_settings().keyring, channel["url_sealed"])
    except SealError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    settings = AlertSettings()
    result = AppriseNotifier(endpoints=settings.notify_endpoints, timeout_s=settings.notify_timeout_s).send(
        kind=channel["kind"],
        url=url,
        title="【测试】EHS 通知通道测试 / test",
        to=to,
        key="ehs-test",
        body=f"通道 {name} 工作正常。This channel works.",
    )
    typer.echo(f"{name}: {result.result}" + (f" ({result.error})" if result.error else ""))
    if not result.ok:
        raise typer.Exit(1)
