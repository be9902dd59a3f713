"""``ehs detectors``: list detectors, fit a model from an exported history, inspect stored artifacts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from detectors import registry
from detectors.adapters import ModelDetector
from detectors.artifacts import default_store
from detectors.features import FeatureSpec, align, build_features

app = typer.Typer(help="Anomaly detectors: registry, training, artifacts.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """Print every registered detector key, version and its first example parameters."""
    for key, cls in sorted(registry.all().items()):
        example = next(iter(cls.example_params()), {})
        typer.echo(f"{key:<18} v{cls.version}  {(cls.__doc__ or '').strip().splitlines()[0]}")
        typer.echo(f"{'':<22}e.g. {json.dumps(example, default=list)}")


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
