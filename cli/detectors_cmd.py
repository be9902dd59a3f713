"""``ehs detectors``: the registry, training from history or an export, artifacts, shadow/enabled modes."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import psycopg
import typer
from pydantic import BaseModel

from cli.common import database_url
from detectors import registry, service
from detectors.adapters import ModelDetector
from detectors.artifacts import default_store
from detectors.features import FeatureSpec, align, build_features
from detectors.training import TrainRequest, train_area

app = typer.Typer(help="Anomaly detectors: registry, training, artifacts.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """Print every registered detector key, version and its first example parameters."""
    for key, cls in sorted(registry.all().items()):
        example = next(iter(cls.example_params()), {})
        typer.echo(f"{key:<18} v{cls.version}  {(cls.__doc__ or '').strip().splitlines()[0]}")
        typer.echo(f"{'':<22}e.g. {json.dumps(example, default=_plain)}")


def _plain(value: object) -> object:
    """JSON for example parameters: a rule's expression as it is written in the plant file, tuples as lists."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_defaults=True)
    return list(value)  # type: ignore[call-overload]


@app.command("artifacts")
def artifacts_command() -> None:
    """List the stored artifacts with their envelopes (nothing is unpickled)."""
    store = default_store()
    names = store.names()
    if not names:
        typer.echo(f"no artifacts in {store.root}")
    for name in names:
        envelope = store.envelope(name)
        typer.echo(
            f"{name}: {envelope.detector} v{envelope.detector_version} on {len(envelope.features)} "
            f"features, {envelope.n_rows} rows {envelope.window_start} .. {envelope.window_end}, "
            f"created {envelope.created_at}"
        )


@app.command("fit-csv")
def fit_csv_command(
    path: Annotated[Path, typer.Argument(help="Long-format CSV export with columns ts, point, value.")],
    name: Annotated[str, typer.Option(help="Artifact name in the store, e.g. drying/oven-1/pca-2026-06.")],
    point: Annotated[list[str], typer.Option(help="Point key of the area (repeat for each).")],
    detector: Annotated[str, typer.Option(help="Registered model detector key.")] = "pyod_pca",
    freq: Annotated[str, typer.Option(help="Grid step (pandas offset alias).")] = "1min",
    window: Annotated[list[int], typer.Option(help="Trailing mean window in grid steps (repeatable).")] = [],  # noqa: B006
    fill_limit: Annotated[int, typer.Option(help="Grid steps a value is held when a point is silent.")] = 0,
    margin: Annotated[float, typer.Option(help="Limit distance from the median training score.")] = 3.0,
    quantile: Annotated[float, typer.Option(help="Training-score quantile anchoring the limit.")] = 1.0,
) -> None:
    """Fit a model detector on an exported history and store it as a versioned artifact."""
    cls = registry.get(detector)
    if not issubclass(cls, ModelDetector):
        raise typer.BadParameter(f"{detector} is not a model detector")
    spec = FeatureSpec(
        points=tuple(point),
        freq=freq,
        fill_limit=fill_limit,
        windows=tuple(window),
        stats=("mean",),
        include_raw=not window,
    )
    readings = pd.read_csv(path)
    features = build_features(align(readings, spec), spec).dropna()
    model = cls(features=spec.names, threshold_quantile=quantile, margin=margin).fit(features)
    start: datetime | None = features.index.min().to_pydatetime() if len(features) else None
    end: datetime | None = features.index.max().to_pydatetime() if len(features) else None
    envelope = default_store().save(
        model,
        name=name,
        data=features,
        window=(start, end),
        extra={"feature_spec": spec.to_dict(), "source": str(path)},
    )
    typer.echo(
        json.dumps(
            {
                "artifact": envelope.name,
                "detector": envelope.detector,
                "rows": envelope.n_rows,
                "features": envelope.features,
                "data_hash": envelope.data_hash,
            }
        )
    )


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _when(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.command("train")
def train_command(
    site: Annotated[str, typer.Option(help="Site code.")],
    area: Annotated[str, typer.Option(help="Area code.")],
    from_: Annotated[str, typer.Option("--from", help="Start of the training window (ISO 8601, UTC if naive).")],
    to: Annotated[str, typer.Option(help="End of the training window (exclusive).")],
    detector: Annotated[str, typer.Option(help="Registered model detector key.")] = "pyod_pca",
    freq: Annotated[str, typer.Option(help="Grid step; 1min or coarser reads the rollups.")] = "1min",
    window: Annotated[list[int], typer.Option(help="Trailing mean window in grid steps (repeatable).")] = [],  # noqa: B006
    point: Annotated[list[str], typer.Option(help="Only these points (device.key or key; repeatable).")] = [],  # noqa: B006
    margin: Annotated[float, typer.Option(help="Limit distance from the median training score.")] = 3.0,
    quantile: Annotated[float, typer.Option(help="Training-score quantile anchoring the limit.")] = 1.0,
) -> None:
    """Fit an area model on the reading history; it starts in shadow mode (scored, recorded, no alarms)."""
    request = TrainRequest(
        site=site,
        area=area,
        start=_when(from_),
        end=_when(to),
        detector=detector,
        freq=freq,
        windows=tuple(window),
        points=tuple(point),
        threshold_quantile=quantile,
        margin=margin,
    )
    with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
        result = train_area(conn=conn, store=default_store(), request=request, actor=_actor())
    typer.echo(
        f"model {result.model_id} ({detector}) for {site}/{area} in shadow mode: "
        f"{result.envelope.n_rows} rows, {len(result.spec.names)} features, artifact {result.envelope.name}"
    )
    typer.echo(
        json.dumps(
            {
                "model_id": result.model_id,
                "artifact": result.envelope.name,
                "rows": result.envelope.n_rows,
                "features": result.envelope.features,
                "data_hash": result.envelope.data_hash,
                "mode": service.SHADOW,
            }
        )
    )


@app.command("models")
def models_command(
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    area: Annotated[str | None, typer.Option(help="Only this area.")] = None,
) -> None:
    """List the area models and their modes."""
    with database_url() as url, psycopg.connect(url) as conn:
        rows = service.list_models(conn=conn, site=site, area=area)
    for m in rows:
        typer.echo(
            f"{m.id:>5}  {m.site}/{m.area:<16} {m.mode:<8} {m.detector:<16} {m.n_rows:>7} rows  "
            f"{m.window_start:%Y-%m-%d %H:%M} .. {m.window_end:%Y-%m-%d %H:%M}  {m.artifact}"
        )
    if not rows:
        typer.echo("no models")


def _mode_change(change, **kwargs) -> None:
    with database_url() as url, psycopg.connect(url) as conn, conn.transaction():
        try:
            model = change(conn=conn, actor=_actor(), **kwargs)
        except (service.ModelStateError, LookupError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
    typer.echo("no model enabled" if model is None else f"model {model.id} of {model.site}/{model.area}: {model.mode}")


@app.command("promote")
def promote_command(model_id: int, reason: Annotated[str, typer.Option(help="Why (audited).")]) -> None:
    """Enable a shadow model (the area's enabled model goes back to shadow); audited."""
    _mode_change(service.promote, model_id=model_id, reason=reason)


@app.command("demote")
def demote_command(model_id: int, reason: Annotated[str, typer.Option(help="Why (audited).")]) -> None:
    """Put an enabled model back to shadow; audited."""
    _mode_change(service.demote, model_id=model_id, reason=reason)


@app.command("rollback")
def rollback_command(
    site: Annotated[str, typer.Option(help="Site code.")],
    area: Annotated[str, typer.Option(help="Area code.")],
    reason: Annotated[str, typer.Option(help="Why (audited).")],
) -> None:
    """Return an area to the model enabled before the current one; audited."""
    _mode_change(service.rollback, site=site, area=area, reason=reason)


@app.command("retire")
def retire_command(model_id: int, reason: Annotated[str, typer.Option(help="Why (audited).")]) -> None:
    """Stop scoring a model for good; audited."""
    _mode_change(service.retire, model_id=model_id, reason=reason)
