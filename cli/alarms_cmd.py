"""``ehs alarms``: look at alarms and act on them from a terminal (the API offers the same functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from cli.common import database_url, print_table

app = typer.Typer(no_args_is_help=True, help="Alarms, interlock commands, drills and device keys.")

USER = typer.Option(..., "--user", help="Who does it (recorded in the audit record)")
ROLE = typer.Option("operator", "--role", help="admin, ehs_manager or operator")


def _plain(result):
    """The alarm engine's ``Alarm`` (or a list of them) as the dict the console prints from."""
    from alerts.alarm import Alarm

    if isinstance(result, Alarm):
        return result.to_dict()
    if isinstance(result, list) and result and isinstance(result[0], Alarm):
        return [a.to_dict() for a in result]
    return result


def _run(fn, **kwargs):
    """Run one service call in a transaction; print a clear message for a refused request."""
    import psycopg

    from alerts.models import AlarmError

    with database_url() as url, psycopg.connect(url) as conn:
        try:
            return _plain(fn(conn=conn, **kwargs))
        except AlarmError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None


def _now() -> datetime:
    return datetime.now(UTC)


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Also alarms that are back to normal"),
    site: str | None = None,
    area: str | None = None,
    limit: int = 50,
) -> None:
    """Open alarms (most urgent first)."""
    from alerts import service

    rows = _run(service.list_alarms, site=site, area=area, open_only=not all_, limit=limit)
    if not rows:
        typer.echo("no alarms")
        return
    table = []
    for r in rows:
        flags = "".join(
            f
            for f, on in (
                ("L", r["latching"]),
                ("C", r["chattering"]),
                ("F", r["flood_id"]),
                ("D", r["drill"]),
                ("1", r["first_out"]),
            )
            if on
        )
        table.append(
            [
                r["id"],
                r["priority_label"],
                r["state_code"],
                flags,
                r["title"][:28],
                r["source"],
                r["level"],
                r["message"][:60],
            ]
        )
    print_table(["id", "pri", "state", "flags", "title", "source", "level", "message"], table, right=frozenset({"id"}))


@app.command()
def show(alarm_id: int) -> None:
    """One alarm with its timeline, interlock commands and notifications."""
    from alerts import service

    a = _run(service.get_alarm, alarm_id=alarm_id)
    typer.echo(
        f"alarm {a['id']}: {a['title']} / {a['title_en'] or ''}\n  {a['source']}  rule {a['rule']} "
        f"(revision {a['rule_revision']})\n  state {a['state_label_en']} ({a['state']}), priority "
        f"{a['priority_label']}, {a['message']}"
    )
    for e in a["events"]:
        typer.echo(
            f"  {e['at']:%H:%M:%S} #{e['id']:<6} {e['kind']:20} {e['from_state'] or '':16} -> "
            f"{e['to_state'] or '':16} {e['actor']:20} {e['cause'] or ''}"
        )
    for c in a["commands"]:
        typer.echo(f"  command {c['action']:18} -> {c['device']:18} {c['status']:10} {c['detail']}")
    for n in a["notifications"]:
        typer.echo(f"  notify  {n['kind']:6} {','.join(n['recipients'].get('roles', [])):40} {n['status']}")


@app.command()
def ack(alarm_id: int, user: str = USER, role: str = ROLE, comment: str | None = None) -> None:
    """Acknowledge an alarm."""
    from alerts import service
    from alerts.models import Actor

    a = _run(service.acknowledge, alarm_id=alarm_id, actor=Actor(user, role), now=_now(), comment=comment)
    typer.echo(f"alarm {alarm_id}: {a['state_label_en']}")


@app.command()
def reset(alarm_id: int, user: str = USER, role: str = ROLE) -> None:
    """Reset a latched alarm."""
    from alerts import service
    from alerts.models import Actor

    a = _run(service.reset, alarm_id=alarm_id, actor=Actor(user, role), now=_now())
    typer.echo(f"alarm {alarm_id}: {a['state_label_en']}")


@app.command()
def shelve(
    alarm_id: int,
    reason: str = typer.Option(..., help="Why"),
    hours: float = typer.Option(1.0),
    user: str = USER,
    role: str = ROLE,
) -> None:
    """Shelve an alarm for a while (it is still evaluated and recorded)."""
    from alerts import service
    from alerts.models import Actor

    a = _run(
        service.shelve,
        alarm_id=alarm_id,
        actor=Actor(user, role),
        reason=reason,
        now=_now(),
        duration=timedelta(hours=hours),
    )
    typer.echo(f"alarm {alarm_id}: {a['state_label_en']} until {a['shelved_until']:%Y-%m-%d %H:%M}")


@app.command()
def kpi(hours: float = typer.Option(24.0, help="Period ending now"), site: str | None = None) -> None:
    """The ISA-18.2 KPI table for the last hours."""
    from alerts import kpi as kpis

    now = _now()
    k = _run(kpis.kpis, since=now - timedelta(hours=hours), until=now, site=site)
    for key in (
        "annunciated",
        "alarms_per_day",
        "alarms_per_hour",
        "alarms_per_10min",
        "max_per_10min",
        "pct_10min_over_10",
        "pct_time_in_flood",
        "top10_share_pct",
        "chattering",
        "stale_present",
        "priority_pct",
    ):
        target = k["targets"].get(key, "")
        typer.echo(f"  {key:18} {k[key]!s:40} {target}")


@app.command()
def drill(
    area: str,
    level: int,
    reason: str = typer.Option(..., help="Why (the drill's record)"),
    site: str = "cz01",
    user: str = USER,
    role: str = typer.Option("ehs_manager", "--role"),
) -> None:
    """Run a response plan level as a drill (simulated devices only; every record marked drill)."""
    from alerts import flows
    from alerts.models import Actor

    a = _run(flows.start_drill, site=site, area=area, level=level, actor=Actor(user, role), reason=reason, now=_now())
    typer.echo(f"drill alarm {a['id']}: {a['title']}")
    for c in a["commands"]:
        typer.echo(f"  {c['action']:18} -> {c['device']:18} {c['status']} {c['detail']}")


@app.command()
def command(
    site: str, device: str, action: str, reason: str = typer.Option(..., help="Why"), user: str = USER, role: str = ROLE
) -> None:
    """Send a manual interlock command (needs a role and a reason; audited)."""
    from alerts import flows
    from alerts.models import Actor

    c = _run(
        flows.request_command,
        site=site,
        device=device,
        action=action,
        actor=Actor(user, role),
        reason=reason,
        now=_now(),
    )
    typer.echo(f"command {c['id']}: {c['action']} -> {c['device']} ({c['status']})")


@app.command()
def key(site: str, device: str) -> None:
    """Print a device's command-signing key (hex), to provision the device.

    It derives from EHS_INTERLOCK_SECRET, or else EHS_SECRET_KEY."""
    from core.commands import device_key
    from core.settings import get_settings

    typer.echo(device_key(get_settings().interlock_root, site, device).hex())
