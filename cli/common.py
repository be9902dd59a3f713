"""Helpers shared by the CLI commands: locating the repository and the servers to use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from core.embedded import resolve_database
from core.runtime import read_runtime
from core.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_PLANT = REPO_ROOT / "examples" / "demo-plant.yaml"


@contextmanager
def database_url() -> Iterator[str]:
    """The configured database, else that of a running ``ehs up``, else the embedded one (started here)."""
    settings = get_settings()
    if settings.database_url:
        yield settings.database_url
        return
    runtime = read_runtime(settings.data_dir)
    if runtime:
        yield runtime["database_url"]
        return
    service = resolve_database(None, settings.data_dir)
    try:
        yield service.url
    finally:
        service.stop()


def mqtt_url() -> str:
    """The configured broker, else that of a running ``ehs up``."""
    settings = get_settings()
    if settings.mqtt_url:
        return settings.mqtt_url
    runtime = read_runtime(settings.data_dir)
    if runtime:
        return runtime["mqtt_url"]
    typer.echo("No broker: set EHS_MQTT_URL or start `ehs up` first.", err=True)
    raise typer.Exit(2)


def print_table(columns: list[str], rows: list[list[object]], *, right: frozenset[str] = frozenset()) -> None:
    """A console table whose columns line up with Chinese text (rich measures East Asian wide characters).

    Piped output is not cut to the terminal's width, so ``grep`` sees whole values.
    """
    import sys

    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 400)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
