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
