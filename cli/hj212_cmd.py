"""``ehs hj212``: check HJ 212 frames from a file (one frame per line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ingest.hj212.check import check_lines

app = typer.Typer(help="HJ 212 (pollutant online monitoring) frames.", no_args_is_help=True)


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="File with one frame per line; '-' reads stdin")],
    tz: Annotated[str, typer.Option(help="Time zone of the loggers' clocks")] = "Asia/Shanghai",
) -> None:
    """Print one JSON object per frame (valid, reason, cn, st, mn, data_time, fields), then a summary line."""
    stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    invalid = 0
    with stream:
        for verdict in check_lines(stream, tz=tz):
            invalid = verdict.get("invalid", invalid)
            typer.echo(json.dumps(verdict, ensure_ascii=False))
    raise typer.Exit(1 if invalid else 0)
