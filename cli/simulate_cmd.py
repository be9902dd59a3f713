"""``ehs simulate``: run the plant simulator, or start and clear incidents in a running one."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DEMO_PLANT, mqtt_url

app = typer.Typer(help="The battery-plant simulator.")


@app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    config: Path = typer.Option(DEMO_PLANT, help="Plant configuration to simulate"),
    rate_scale: float = typer.Option(1.0, help="Multiply publishing intervals (0.5 = twice as often)"),
    speed: float = typer.Option(1.0, help="Play incidents this many times faster"),
    seed: int = typer.Option(7),
) -> None:
    """Publish the plant's telemetry until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    import os

    from simulator.__main__ import main

    os.environ["EHS_MQTT_URL"] = mqtt_url()
    main(["--config", str(config), "--rate-scale", str(rate_scale), "--speed", str(speed), "--seed", str(seed)])


def _control(site: str, body: dict) -> dict:
    """Send a control request to the running simulator; a missing answer is one clear line, not a traceback."""
    from simulator.runner import send_control

    try:
        return send_control(mqtt_url(), site, body)
    except (TimeoutError, OSError) as exc:
        typer.echo(f"ehs simulate: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def incident(
    name: str = typer.Argument(
        ..., help="thermal_runaway, electrolyte_leak, rto_failure, ph_excursion, meter_stop or sensor_flatline"
    ),
    area: str | None = typer.Option(None, help="Area code (default: the first of its process type)"),
    device: str | None = typer.Option(None, help="Device code within the area"),
    site: str = typer.Option("cz01"),
) -> None:
    """Start a named incident in the running simulator."""
    reply = _control(site, {"action": "start", "incident": name, "area": area, "device": device})
    if not reply.get("ok"):
        typer.echo(f"refused: {reply.get('error')}", err=True)
        raise typer.Exit(1)
    typer.echo(f"incident {name} started in area {reply['area']}")


@app.command()
def clear(
    name: str | None = typer.Argument(None, help="Incident to clear (default: all)"), site: str = typer.Option("cz01")
) -> None:
    """Clear one or all incidents in the running simulator."""
    reply = _control(site, {"action": "clear", "incident": name})
    typer.echo(f"cleared: {', '.join(reply.get('cleared', [])) or 'nothing'}")


@app.command("list")
def list_incidents() -> None:
    """List the incidents the simulator can play."""
    from simulator.incidents import INCIDENTS

    for spec in INCIDENTS.values():
        typer.echo(f"{spec.name:20} {spec.title} / {spec.title_en}")
