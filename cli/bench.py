"""``ehs bench NAME``: run a benchmark from ``benchmarks/``; each prints its figures and one JSON line."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, help="Load and latency benchmarks (see ARCHITECTURE.md targets).")

BENCHMARKS = {
    "ingest": "benchmarks.ingest",
    "alarm-latency": "benchmarks.alarm_latency",
    "notify": "benchmarks.notify",
    "api": "benchmarks.api",
    "hj212": "benchmarks.hj212",
    "reports": "benchmarks.reports",
    "hazwaste": "benchmarks.hazwaste",
    "carbon": "benchmarks.carbon",
    "energy": "benchmarks.energy",
}


def _run(name: str, seconds: float, extra: list[str]) -> None:
    target = BENCHMARKS[name]
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name == target:
            typer.echo(f"benchmark {name!r} is not built yet", err=True)
        else:
            typer.echo(
                f"benchmark {name!r} needs the Python module {exc.name!r}, which is not installed "
                f"(reinstall with ./ehs, or pip install the pinned package)",
                err=True,
            )
        raise typer.Exit(2) from None
    module.main(["--seconds", str(seconds), *extra])


def _command(name: str):
    def command(ctx: typer.Context, seconds: float = typer.Option(20.0, help="Measuring time")) -> None:
        _run(name, seconds, ctx.args)

    command.__doc__ = f"Run benchmarks/{BENCHMARKS[name].split('.')[1]}.py."
    return command


for _name in BENCHMARKS:
    app.command(_name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_command(_name))
